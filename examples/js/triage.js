// Lists the open issues and files a new one at the same time: each
// integration call returns a promise, and the gateway runs the calls of one
// turn concurrently. A call the permit does not allow throws with `.code`
// (the policy's deny code); a non-2xx response throws with `.status`.
const path = `/repos/${args.repo}/issues`;
const [open, created] = await Promise.all([
  github('GET', path, { query: { state: 'open' } }),
  github('POST', path, { body: { title: args.title } }),
]);
try {
  await github('DELETE', path);
} catch (e) {
  console.error(`not allowed, as expected: ${e.code}`);
}
console.log(JSON.stringify({ open_issues: open.map((i) => i.title), created: created.number }));
