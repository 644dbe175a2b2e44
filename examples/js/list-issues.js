// The quickstart's script: list a repository's issues with the owner's
// token, which this code never sees. `args.repo` is "owner/name".
const issues = await github('GET', `/repos/${args.repo}/issues`);
console.log(JSON.stringify(issues));
