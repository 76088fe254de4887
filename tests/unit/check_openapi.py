#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check http/openapi.json (partreg-http's OpenAPI 3.1 document) against
schemas/ and against the contract of the front door.

Static checks (no daemon; ctest unit.openapi):
  - the document's structure: OpenAPI 3.1, every operation with responses,
    unique operationIds, path parameters declared for every {template},
    every $ref resolving inside the document; and, when the package
    openapi-spec-validator is importable (the integration test gives it a
    venv), its validation against the OpenAPI 3.1 meta-schema;
  - the schemas: every file of schemas/ (cmd/, reply/, state/, defs.json)
    is a component (cmd/partition.lock.json -> cmd.partition.lock) equal to
    the file with each $ref to another file pointing to its component
    instead (../defs.json#/$defs/name -> #/components/schemas/defs/$defs/name),
    and no cmd.*/reply.*/state.* component lacks its file; every valid
    example of schemas/examples/ validates against the component through
    the document, and every invalid one is refused (less the gaps
    check_schemas.py lists), so the rewritten $refs resolve as the files' do;
  - the commands: every schema of schemas/cmd/ has POST /v1/<noun>/<verb>
    whose request body is $ref cmd.<noun>.<verb> and whose 200 reply is
    reply.envelope with result $ref one reply.* shape; each reply.* shape is
    some command's result; writes document 401/403/409;
  - the original routes and operations of the contract are there with their
    query parameters and statuses;
  - every example in the document (request bodies, replies) validates
    against the schema next to it;
  - http/www/docs.html exists, fetches /openapi.json and loads nothing from
    another host (the machine is offline).

  --fix rewrites the schema components from schemas/ (after editing a schema).

Live checks (--live URL; tests/integration/test_http_openapi.sh runs them
against a real partreg-http with its broker and agent): /openapi.json is the
file; every path of the document answers, each operation called with real
arguments (a source registered through it), with a status the document
lists for it and a JSON body that validates against that status's schema;
and the route of every request the daemon counted in /metrics is a path of
the document.

Usage: check_openapi.py [--root DIR] [--fix] [--live URL] [--require-validator]
"""
import argparse
import copy
import json
import os
import pathlib
import re
import sys
import uuid

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed (apt-get install python3-jsonschema)")
    sys.exit(77)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import check_schemas  # noqa: E402  (strict_load and the gaps of the schemas' examples)

DOC_URI = "urn:partreg:openapi"
FAILURES = []


def fail(msg):
    FAILURES.append(msg)


# ---- the rewrite rule: schema files -> components ----
def comp_name(rel):
    return rel[:-5].replace("/", ".")


def rewrite(node, rel):
    base = pathlib.PurePosixPath(rel).parent
    if isinstance(node, dict):
        return {k: (rewrite_ref(v, base, rel) if k == "$ref" and isinstance(v, str) else rewrite(v, rel))
                for k, v in node.items()}
    if isinstance(node, list):
        return [rewrite(x, rel) for x in node]
    return node


def rewrite_ref(v, base, rel):
    file, _, frag = v.partition("#")
    target = rel
    if file:
        parts = []
        for p in (base / file).parts:
            if p == "..":
                parts.pop()
            elif p != ".":
                parts.append(p)
        target = "/".join(parts)
    return "#/components/schemas/" + comp_name(target) + frag


def schema_files(schemas):
    out = {}
    for path in sorted(schemas.rglob("*.json")):
        rel = path.relative_to(schemas).as_posix()
        if not rel.startswith("examples/"):
            out[rel] = check_schemas.strict_load(path.read_bytes())
    return out


# ---- validation through the whole document ----
def pointer(*parts):
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class DocValidator:
    """Validates instances against any schema of the document, by JSON pointer."""

    def __init__(self, doc):
        self.doc = doc
        self.cache = {}
        try:
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012

            self.registry = Registry().with_resource(
                DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
            self.resolver = None
        except ImportError:
            self.registry = None
            self.resolver = jsonschema.RefResolver(base_uri=DOC_URI, referrer=doc)

    def validator(self, ptr):
        if ptr not in self.cache:
            schema = {"$ref": DOC_URI + ptr}
            if self.registry is not None:
                v = jsonschema.Draft202012Validator(schema, registry=self.registry)
            else:
                v = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
            self.cache[ptr] = v
        return self.cache[ptr]

    def errors(self, ptr, instance):
        return [f"{e.message} at {list(e.absolute_path)}" for e in self.validator(ptr).iter_errors(instance)]


def resolve_local(doc, ref):
    if not ref.startswith("#/"):
        return None
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def walk_refs(node, where, doc):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                if resolve_local(doc, v) is None:
                    fail(f"{where}: $ref {v} does not resolve in the document")
            else:
                walk_refs(v, where + "/" + k, doc)
    elif isinstance(node, list):
        for i, x in enumerate(node):
            walk_refs(x, f"{where}/{i}", doc)


METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# The front door's routes (README, "HTTP"; partreg-http(8)): method, path, query parameters
# (name: required), statuses the document must list.
SEED = [
    ("get", "/", {}, [200]),
    ("post", "/sources/register", {"source_name": True, "owner": True}, [200, 409, 422, 503]),
    ("post", "/providers/register", {"provider_name": True, "access_token": False, "source_name": False},
     [200, 401, 403, 404, 409, 422, 503]),
    ("post", "/partitions/register",
     {"start": True, "end": True, "source_name": True, "provider_name": True, "access_token": False},
     [200, 401, 403, 404, 409, 422, 503]),
    ("post", "/partitions/lock",
     {"start": True, "end": True, "source_name": True, "provider_name": True, "access_token": False, "ttl_s": False},
     [200, 401, 403, 404, 409, 422, 503]),
    ("post", "/partitions/unlock",
     {"start": True, "end": True, "source_name": True, "provider_name": True, "access_token": False, "fence": False},
     [200, 401, 403, 404, 409, 422, 503]),
    ("get", "/sources/{source_name}/check_readiness", {"start": True, "end": True}, [200, 404, 422]),
    ("get", "/docs", {}, [200]),
    ("get", "/redoc", {}, [308]),
    ("get", "/openapi.json", {}, [200]),
    ("get", "/v1/sources", {}, [200]),
    ("get", "/v1/sources/{source}", {}, [200, 404]),
    ("get", "/v1/sources/{source}/partitions", {"start": False, "end": False}, [200, 404]),
    ("get", "/v1/sources/{source}/readiness", {"start": True, "end": True}, [200, 404, 503]),
    ("get", "/v1/agent/status", {}, [200, 404]),
    ("get", "/v1/agent/stats", {}, [200, 404]),
    ("get", "/v1/stream", {}, [200]),
    ("get", "/healthz", {}, [200]),
    ("get", "/readyz", {}, [200, 503]),
    ("get", "/metrics", {}, [200]),
    ("get", "/app.js", {}, [200]),
    ("get", "/style.css", {}, [200]),
    ("get", "/index.html", {}, [200]),
    ("get", "/docs.html", {}, [200]),
]
CONTENT = {"/v1/stream": "text/event-stream", "/metrics": "text/plain", "/healthz": "text/plain",
           "/docs": "text/html", "/app.js": "text/javascript", "/style.css": "text/css"}


def check_structure(doc):
    if not re.fullmatch(r"3\.1\.\d+", str(doc.get("openapi", ""))):
        fail(f"openapi is {doc.get('openapi')!r}, not 3.1.x")
    for k in ("title", "version"):
        if not isinstance(doc.get("info", {}).get(k), str):
            fail(f"info.{k} missing")
    ids = {}
    for path, item in doc.get("paths", {}).items():
        if not path.startswith("/"):
            fail(f"path {path} does not start with /")
        templ = set(re.findall(r"\{([^}]+)\}", path))
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = f"{method.upper()} {path}"
            oid = op.get("operationId")
            if not oid:
                fail(f"{where}: no operationId")
            elif oid in ids:
                fail(f"{where}: operationId {oid} also on {ids[oid]}")
            else:
                ids[oid] = where
            if not op.get("responses"):
                fail(f"{where}: no responses")
            for code, resp in op.get("responses", {}).items():
                if not re.fullmatch(r"[1-5][0-9][0-9]|default", code):
                    fail(f"{where}: response key {code}")
                if "description" not in resp:
                    fail(f"{where} {code}: no description")
            params = op.get("parameters", []) + item.get("parameters", [])
            declared = {p["name"] for p in params if p.get("in") == "path"}
            if declared != templ:
                fail(f"{where}: path parameters {sorted(declared)} but the template has {sorted(templ)}")
            for p in params:
                if p.get("in") == "path" and p.get("required") is not True:
                    fail(f"{where}: path parameter {p['name']} not required")
            for sec in op.get("security", []):
                for name in sec:
                    if name not in doc.get("components", {}).get("securitySchemes", {}):
                        fail(f"{where}: security scheme {name} not defined")
    walk_refs(doc, "", doc)
    return ids


def check_meta_schema(doc, require):
    try:
        from openapi_spec_validator import validate
    except ImportError:
        try:
            from openapi_spec_validator import validate_spec as validate
        except ImportError:
            if require:
                fail("openapi-spec-validator is not importable (--require-validator)")
            else:
                print("note: openapi-spec-validator not installed here: the OpenAPI 3.1 meta-schema "
                      "check runs in integration.test_http_openapi (its venv)")
            return
    try:
        validate(doc)
        print("ok - valid OpenAPI 3.1 (openapi-spec-validator)")
    except Exception as e:  # its exceptions differ between versions
        fail("openapi-spec-validator: " + str(e).splitlines()[0][:500])


def check_components(doc, files):
    comps = doc.get("components", {}).get("schemas", {})
    want = {comp_name(rel): rewrite(schema, rel) for rel, schema in files.items()}
    for name, schema in want.items():
        if name not in comps:
            fail(f"components.schemas.{name} missing (schemas/{name.replace('.', '/', 1)}.json)")
        elif comps[name] != schema:
            fail(f"components.schemas.{name} differs from its schema file (run check_openapi.py --fix)")
    for name in comps:
        if re.match(r"(cmd|reply|state)\.", name) and name not in want or name == "defs" and name not in want:
            fail(f"components.schemas.{name} has no schema file")
    return want


def check_examples_through_doc(doc, schemas_dir, v):
    examples = schemas_dir / "examples"
    n = 0
    for kind_dir in sorted(examples.glob("*/*/*")):
        group, name, kind = kind_dir.relative_to(examples).parts
        ptr = pointer("components", "schemas", f"{group}.{name}")
        for path in sorted(kind_dir.glob("*.json")):
            try:
                inst = check_schemas.strict_load(path.read_bytes())
            except check_schemas.NotStrictJSON:
                continue
            n += 1
            errs = v.errors(ptr, inst)
            rel = path.relative_to(examples)
            if kind == "valid" and errs:
                fail(f"{rel}: refused through the document: {errs[0]}")
            if kind == "invalid" and not errs:
                code = path.name.split("--")[0]
                if code not in check_schemas.GAPS_BY_CODE and path.name not in check_schemas.GAPS_BY_FILE:
                    fail(f"{rel}: invalid example accepted through the document")
    print(f"ok - {n} examples of schemas/examples/ judged alike through the document's components")


def check_commands(doc, files):
    paths = doc.get("paths", {})
    shapes_used = set()
    for rel in files:
        if not rel.startswith("cmd/"):
            continue
        cmd = rel[4:-5]
        noun, verb = cmd.split(".", 1)
        path = f"/v1/{noun}/{verb}"
        op = paths.get(path, {}).get("post")
        if op is None:
            fail(f"{rel}: no POST {path}")
            continue
        body = op.get("requestBody", {})
        sch = body.get("content", {}).get("application/json", {}).get("schema", {})
        if body.get("required") is not True or sch != {"$ref": f"#/components/schemas/cmd.{cmd}"}:
            fail(f"POST {path}: requestBody is not the required $ref cmd.{cmd}: {sch}")
        r200 = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        target = resolve_local(doc, r200.get("$ref", "")) if "$ref" in r200 else r200
        parts = (target or {}).get("allOf", [])
        refs = [p.get("$ref") for p in parts]
        result = [p.get("properties", {}).get("result", {}).get("$ref") for p in parts]
        result = [r for r in result if r]
        if "#/components/schemas/reply.envelope" not in refs or len(result) != 1 or \
                not result[0].startswith("#/components/schemas/reply."):
            fail(f"POST {path}: 200 is not reply.envelope with a result $ref reply.<shape> ({r200})")
        else:
            shapes_used.add(result[0].rsplit("/", 1)[1])
        write = "access_token" in files[rel].get("properties", {}) and cmd in WRITES
        codes = set(op.get("responses", {}))
        for c in ("400", "503", "504") + (("401", "403", "409") if write else ()):
            if c not in codes:
                fail(f"POST {path}: status {c} not listed")
        for c, resp in op.get("responses", {}).items():
            if c != "200":
                s = resp.get("content", {}).get("application/json", {}).get("schema")
                if s != {"$ref": "#/components/schemas/Error"}:
                    fail(f"POST {path} {c}: not the Error envelope")
    for rel in files:
        if rel.startswith("reply/") and rel != "reply/envelope.json":
            if comp_name(rel) not in shapes_used:
                fail(f"{rel}: no command's reply has this result")
    print(f"ok - {sum(1 for r in files if r.startswith('cmd/'))} commands with POST /v1/<noun>/<verb>, body and reply from schemas/")


# Writes, as schemas/README.md lists them.
WRITES = {"source.register", "provider.register", "source.rotate-token", "partition.register", "partition.lock",
          "partition.renew", "partition.unlock", "partition.fail", "partition.delete", "session.abort"}


def check_contract_routes(doc):
    paths = doc.get("paths", {})
    for method, path, query, codes in SEED:
        op = paths.get(path, {}).get(method)
        if op is None:
            fail(f"{method.upper()} {path} (contract) not in the document")
            continue
        params = {p["name"]: p.get("required", False) for p in op.get("parameters", []) if p.get("in") == "query"}
        for name, req in query.items():
            if name not in params:
                fail(f"{method.upper()} {path}: query parameter {name} missing")
            elif params[name] != req:
                fail(f"{method.upper()} {path}: query parameter {name} required={params[name]}, contract says {req}")
        for c in codes:
            if str(c) not in op.get("responses", {}):
                fail(f"{method.upper()} {path}: status {c} not listed")
        if path in CONTENT and CONTENT[path] not in op.get("responses", {}).get("200", {}).get("content", {}):
            fail(f"{method.upper()} {path}: 200 is not {CONTENT[path]}")
    for path in ("/partitions/lock", "/partitions/unlock"):
        op = paths.get(path, {}).get("post", {})
        if {"bearer": []} not in op.get("security", []) or {} in op.get("security", []):
            fail(f"POST {path}: the token (bearer or access_token) is not required by security")
    print(f"ok - {len(SEED)} routes of the contract with their parameters and statuses")


def check_doc_examples(doc, v):
    n = 0
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            contents = [(("requestBody",), op.get("requestBody", {}).get("content", {}))]
            for code, resp in op.get("responses", {}).items():
                contents.append((("responses", code), resp.get("content", {})))
            for where, content in contents:
                for mt, media in content.items():
                    if "schema" not in media or not mt.endswith("json"):
                        continue
                    ptr = pointer("paths", path, method, *where, "content", mt, "schema")
                    exs = [(k, e.get("value")) for k, e in media.get("examples", {}).items()]
                    if "example" in media:
                        exs.append(("example", media["example"]))
                    for name, value in exs:
                        n += 1
                        errs = v.errors(ptr, value)
                        if errs:
                            fail(f"{method.upper()} {path} {'/'.join(where)} example {name}: {errs[0]}")
    print(f"ok - {n} examples in the document validate against their schemas")


def check_www(doc, root):
    """Every file of http/www/ is served at /<name> (the daemon embeds them all)."""
    www = root / "http" / "www"
    for f in sorted(www.iterdir()) if www.is_dir() else []:
        if f.is_file() and "get" not in doc.get("paths", {}).get("/" + f.name, {}):
            fail(f"http/www/{f.name} is served at /{f.name}: not in the document")


def check_docs_page(root):
    page = root / "http" / "www" / "docs.html"
    if not page.exists():
        fail("http/www/docs.html missing")
        return
    text = page.read_text()
    if "openapi.json" not in text:
        fail("docs.html does not fetch /openapi.json")
    for m in re.finditer(r"""(?:src|href)\s*=\s*["']([^"']+)""", text):
        if re.match(r"(https?:)?//", m.group(1)):
            fail(f"docs.html loads {m.group(1)} from another host")
    if re.search(r"""import\s*\(?\s*["']https?://|url\(\s*["']?https?://""", text):
        fail("docs.html imports from another host")
    print("ok - docs.html fetches /openapi.json and nothing from another host")


def fix(doc_path, doc, files):
    comps = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in [n for n in comps if re.match(r"(cmd|reply|state)\.", n) or n == "defs"]:
        del comps[name]
    for rel, schema in files.items():
        comps[comp_name(rel)] = rewrite(schema, rel)
    doc_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"rewrote the schema components of {doc_path}")


# ---- live ----
def live(doc, v, base, source_dir):
    import urllib.error
    import urllib.request

    def call(method, path, query=None, body=None, token=None, accept="application/json", raw=False):
        url = base + path
        if query:
            from urllib.parse import urlencode
            url += "?" + urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method.upper())
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        req.add_header("Accept", accept)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=20) as r:
                status, ctype, payload = r.status, r.headers.get("Content-Type", ""), r.read(1 << 22) if path != "/v1/stream" else r.read(1)
        except urllib.error.HTTPError as e:
            status, ctype, payload = e.code, e.headers.get("Content-Type", ""), e.read()
        return status, ctype.split(";")[0].strip(), payload

    served_ok = set()

    def check(method, templ, status, ctype, payload, expect=None):
        where = f"{method.upper()} {templ}"
        op = doc["paths"].get(templ, {}).get(method)
        if op is None:
            fail(f"{where}: not in the document")
            return None
        if expect is not None and status != expect:
            fail(f"{where}: status {status}, expected {expect}: {payload[:300]!r}")
        resp = op["responses"].get(str(status))
        if resp is None:
            fail(f"{where}: answered {status}, which the document does not list: {payload[:300]!r}")
            return None
        content = resp.get("content", {})
        if content and ctype not in content:
            fail(f"{where} {status}: Content-Type {ctype}, the document says {sorted(content)}")
            return None
        served_ok.add((method, templ))
        if ctype.endswith("json") and "schema" in content.get(ctype, {}):
            try:
                body = json.loads(payload)
            except ValueError:
                fail(f"{where} {status}: not JSON: {payload[:200]!r}")
                return None
            errs = v.errors(pointer("paths", templ, method, "responses", str(status), "content", ctype, "schema"), body)
            if errs:
                fail(f"{where} {status}: the body does not match the document: {errs[0]}; body {payload[:400]!r}")
            return body
        return payload

    # /openapi.json is the file.
    st, ct, payload = call("get", "/openapi.json")
    if st != 200 or json.loads(payload) != doc:
        fail(f"GET /openapi.json: status {st}, not the document of http/openapi.json")
    else:
        print("ok - /openapi.json serves http/openapi.json")
    check("get", "/openapi.json", st, ct, payload, 200)

    s = "oa-" + uuid.uuid4().hex[:8]
    day = {"start": "2023-01-01T00:00:00Z", "end": "2023-01-02T00:00:00Z"}
    day2 = {"start": "2023-01-02T00:00:00Z", "end": "2023-01-03T00:00:00Z"}
    day3 = {"start": "2023-01-03T00:00:00Z", "end": "2023-01-04T00:00:00Z"}
    q1 = {"start": "2023-01-01 00:00:00", "end": "2023-01-02 00:00:00"}

    # The original routes, in the README's order.
    st, ct, p = call("post", "/sources/register", {"source_name": s, "owner": "o"})
    b = check("post", "/sources/register", st, ct, p, 200) or {}
    token = (b.get("registered_object") or {}).get("access_token", {}).get("token")
    if not token:
        fail("no token from POST /sources/register: cannot go on")
        return
    st, ct, p = call("post", "/sources/register", {"source_name": s, "owner": "o"})
    check("post", "/sources/register", st, ct, p, 409)
    st, ct, p = call("post", "/providers/register", {"provider_name": "p", "access_token": token, "source_name": s})
    check("post", "/providers/register", st, ct, p, 200)
    # Without source_name the agent finds the source from the owner's token
    # (the original service's call) -- once its provider/register takes no
    # source; until then (schemas/cmd/provider.register.json requires it)
    # the agent's 400 missing_field comes back through the front door.
    needs_source = "source" in json.loads((source_dir / "schemas/cmd/provider.register.json").read_text()).get("required", [])
    st, ct, p = call("post", "/providers/register", {"provider_name": "p2", "access_token": token})
    check("post", "/providers/register", st, ct, p, 400 if needs_source else 200)
    if needs_source:
        print("note - the agent's provider/register still requires source: POST /providers/register "
              "without source_name answers 400 missing_field")
    st, ct, p = call("post", "/providers/register", {"provider_name": "q", "source_name": s})
    check("post", "/providers/register", st, ct, p, 401)
    pq = dict(q1, source_name=s, provider_name="p")
    st, ct, p = call("post", "/partitions/register", pq, token=token)
    check("post", "/partitions/register", st, ct, p, 200)
    st, ct, p = call("post", "/partitions/lock", pq)
    check("post", "/partitions/lock", st, ct, p, 401)
    st, ct, p = call("post", "/partitions/lock", dict(pq, access_token=token, ttl_s=600))
    b = check("post", "/partitions/lock", st, ct, p, 200) or {}
    fence = (b.get("registered_object") or {}).get("fence")
    st, ct, p = call("post", "/partitions/lock", pq, token=token)
    check("post", "/partitions/lock", st, ct, p, 409)
    st, ct, p = call("get", f"/sources/{s}/check_readiness", q1)
    check("get", "/sources/{source_name}/check_readiness", st, ct, p, 200)
    st, ct, p = call("post", "/partitions/unlock", dict(pq, fence=fence) if fence else pq, token=token)
    check("post", "/partitions/unlock", st, ct, p, 200)
    st, ct, p = call("get", f"/sources/{s}/check_readiness", {"start": "2023-01-01"})
    check("get", "/sources/{source_name}/check_readiness", st, ct, p, 422)
    st, ct, p = call("get", "/sources/" + s + "-none/check_readiness", q1)
    check("get", "/sources/{source_name}/check_readiness", st, ct, p, 404)
    for path, exp in (("/", 200), ("/docs", 200), ("/redoc", 308), ("/healthz", 200), ("/readyz", 200),
                      ("/metrics", 200)):
        st, ct, p = call("get", path)
        check("get", path, st, ct, p, exp)
    # The files of http/www/ (the dashboard's may not be in this tree yet:
    # then their routes must be 404, and are said to be missing).
    www = source_dir / "http" / "www"
    for name in ("index.html", "app.js", "style.css", "docs.html"):
        st, ct, p = call("get", "/" + name)
        if (www / name).is_file():
            check("get", "/" + name, st, ct, p, 200)
            if p != (www / name).read_bytes():
                fail(f"GET /{name}: not http/www/{name}")
        else:
            served_ok.add(("get", "/" + name))
            print(f"note - http/www/{name} is not in this tree: GET /{name} answers {st}")
            if st != 404:
                fail(f"GET /{name}: {st} without http/www/{name}")
    st, ct, p = call("get", "/", accept="text/html")
    check("get", "/", st, ct, p, 200)
    if (www / "index.html").is_file() and ct != "text/html":
        fail(f"GET / with Accept: text/html: {ct}, not the dashboard")

    # /v1 commands, each with a real body, in an order that succeeds.
    s2 = s + "-v1"
    bodies = [
        ("source.register", {"source": s2, "owner": "o"}, None),
        ("source.get", {"source": s2}, None),
        ("source.list", {"limit": 5}, None),
        ("provider.register", {"source": s2, "provider": "p"}, "T"),
        ("partition.register", dict(day, source=s2, provider="p"), "T"),
        ("partition.lock", dict(day, source=s2, provider="p", ttl_s=600, session="sess-" + s2), "T"),
        ("partition.renew", dict(day, source=s2, provider="p", fence="F"), "T"),
        ("partition.unlock", dict(day, source=s2, provider="p", metadata={"rows": 1}), "T"),
        ("partition.lock", dict(day2, source=s2, provider="p"), "T"),
        ("partition.fail", dict(day2, source=s2, provider="p", reason="again"), "T"),
        ("partition.lock", dict(day3, source=s2, provider="p", session="sess-" + s2), "T"),
        ("session.abort", {"session": "sess-" + s2, "reason": "test"}, None),
        ("partition.list", {"source": s2}, None),
        ("readiness.query", dict(day, source=s2), None),
        ("history.query", {"source": s2, "limit": 10}, None),
        ("partition.delete", dict(day2, source=s2, provider="p"), "T"),
        ("source.rotate-token", {"source": s2}, "T"),
        ("agent.resync", {"source": s2}, None),
    ]
    tok2 = None
    fence2 = None
    done = set()
    for cmd, body, auth in bodies:
        body = copy.deepcopy(body)
        if body.get("fence") == "F":
            body["fence"] = fence2
        noun, verb = cmd.split(".", 1)
        st, ct, p = call("post", f"/v1/{noun}/{verb}", body=body, token=tok2 if auth else None)
        b = check("post", f"/v1/{noun}/{verb}", st, ct, p, 200) or {}
        done.add(cmd)
        res = b.get("result") or {}
        if cmd == "source.register":
            tok2 = res.get("access_token")
        if cmd == "partition.lock" and fence2 is None:
            fence2 = res.get("fence")
        if cmd == "source.rotate-token":
            tok2 = res.get("access_token") or tok2
    missing = {r[4:-5] for r in (p.relative_to(source_dir / "schemas").as_posix()
                                 for p in (source_dir / "schemas" / "cmd").glob("*.json"))} - done
    if missing:
        fail(f"live: no call of {sorted(missing)}")
    # The front door's refusals of its own.
    st, ct, p = call("post", "/v1/source/get", body={"source": s2, "reply_to": "partreg/v1/reply/x"})
    check("post", "/v1/source/get", st, ct, p, 400)
    st, ct, p = call("post", "/v1/partition/lock", body=dict(day, source=s2, provider="p"))
    check("post", "/v1/partition/lock", st, ct, p, 401)
    st, ct, p = call("post", "/v1/partition/lock", body=dict(day, source=s2 + "-none", provider="p"), token=tok2)
    check("post", "/v1/partition/lock", st, ct, p)

    # Reads.
    for method, templ, path, query, exp in (
        ("get", "/v1/sources", "/v1/sources", None, 200),
        ("get", "/v1/sources/{source}", f"/v1/sources/{s2}", None, 200),
        ("get", "/v1/sources/{source}", f"/v1/sources/{s2}-none", None, 404),
        ("get", "/v1/sources/{source}/partitions", f"/v1/sources/{s2}/partitions", None, 200),
        ("get", "/v1/sources/{source}/partitions", f"/v1/sources/{s2}/partitions", day, 200),
        ("get", "/v1/sources/{source}/readiness", f"/v1/sources/{s2}/readiness", day, 200),
        ("get", "/v1/agent/status", "/v1/agent/status", None, 200),
        ("get", "/v1/agent/stats", "/v1/agent/stats", None, None),
        ("get", "/v1/stream", "/v1/stream", None, 200),
    ):
        st, ct, p = call(method, path, query)
        check(method, templ, st, ct, p, exp)

    # Every operation of the document was called and answered as documented.
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item and (method, path) not in served_ok:
                fail(f"{method.upper()} {path}: not answered as documented (or not called) on the daemon")
    print(f"ok - {len(served_ok)} operations answered on the daemon as documented")

    # Every route the daemon counted is in the document.
    st, ct, p = call("get", "/metrics")
    routes = set(re.findall(r'^partreg_http_requests_total\{[^}]*route="([^"]*)"', p.decode(), re.M))
    # The daemon's labels that are not paths: /v1/{command} (every POST
    # /v1/<noun>/<verb>) and /{static} (the files of http/www/ and
    # /openapi.json) stand for documented paths; the others count refusals
    # of routes that do not exist or of bodies too large.
    documented = set(doc["paths"]) | {"/v1/{command}", "/{static}"}
    refusals = {"/{unknown}", "/{too_large}", "/v1/{unknown}", "/v1/{read}"}
    unknown = {r for r in routes if r not in documented and r not in refusals}
    if unknown:
        fail(f"/metrics counts routes the document lacks: {sorted(unknown)}")
    if "/sources/{source_name}/check_readiness" not in routes:
        fail(f"/metrics: no route label /sources/{{source_name}}/check_readiness (labels: {sorted(routes)})")
    print(f"ok - the {len(routes)} routes /metrics counted are paths of the document")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.environ.get("PARTREG_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2])
    ap.add_argument("--fix", action="store_true")
    ap.add_argument("--live")
    ap.add_argument("--require-validator", action="store_true")
    args = ap.parse_args()
    root = pathlib.Path(args.root).resolve()
    doc_path = root / "http" / "openapi.json"
    doc = check_schemas.strict_load(doc_path.read_bytes())
    files = schema_files(root / "schemas")
    if args.fix:
        fix(doc_path, doc, files)
        return 0
    check_structure(doc)
    check_meta_schema(doc, args.require_validator)
    check_components(doc, files)
    v = DocValidator(doc)
    check_examples_through_doc(doc, root / "schemas", v)
    check_commands(doc, files)
    check_contract_routes(doc)
    check_doc_examples(doc, v)
    check_docs_page(root)
    check_www(doc, root)
    if args.live:
        live(doc, v, args.live.rstrip("/"), root)
    for f in FAILURES:
        print("FAIL:", f)
    if FAILURES:
        print(f"{len(FAILURES)} failures")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
