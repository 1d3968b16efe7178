# Generates openapi.json (the OpenAPI 3.1 document served at /openapi.json):
#   python3 vault-server/src/server/openapi.py > vault-server/src/server/openapi.json
# A unit test checks the result lists exactly the router's routes; the HTTP
# tests validate the served document with openapi-spec-validator.
import json
P = lambda name, desc, schema=None, where="path": {"name": name, "in": where, "required": where == "path", "description": desc, "schema": schema or {"type": "string"}}
APPLICANT = P("applicant", "The caller's opaque applicant id.", {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"})
DOC = P("id", "Document id (UUID).", {"type": "string", "format": "uuid"})
def prob(code, desc):
    return {"description": desc, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
COMMON_DEFS = {"BadRequest": prob(400, "Malformed id, query, header or body."), "Unauthorized": prob(401, "Missing, invalid, expired or revoked API key."), "Forbidden": prob(403, "The key's role does not allow this."), "RateLimited": {"description": "Too many requests (per key or per client address).", "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}, "Unavailable": prob(503, "The database or the blob store is unavailable.")}
COMMON = {code: {"$ref": "#/components/responses/" + name} for code, name in [("400", "BadRequest"), ("401", "Unauthorized"), ("403", "Forbidden"), ("429", "RateLimited"), ("503", "Unavailable")]}
def resp(extra, roles, public=False):
    r = dict(extra)
    for k, v in COMMON.items():
        if public and k in ("401", "403"):
            continue
        r.setdefault(k, v)
    return r
def jsonc(ref): return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}
def op(summary, roles, responses, params=(), body=None, public=False, desc=None):
    o = {"summary": summary, "description": (desc + "\n\n" if desc else "") + ("Roles: " + ", ".join(roles) + "." if roles else "No API key needed."), "operationId": None, "parameters": list(params), "responses": resp(responses, roles, public)}
    if body: o["requestBody"] = body
    if public: o["security"] = []
    if not o["parameters"]: del o["parameters"]
    return o
NF = {"$ref": "#/components/responses/NotFound"}
COMMON_DEFS["NotFound"] = prob(404, "Unknown id, or another tenant's (indistinguishable).")
DOWNLOAD_HEADERS = {"ETag": {"schema": {"type": "string"}}, "Content-Length": {"schema": {"type": "integer"}}, "Content-Disposition": {"schema": {"type": "string"}}, "Accept-Ranges": {"schema": {"type": "string"}}}
RANGE_PARAMS = [P("Range", "A single byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`); anything else is 400.", {"type": "string", "pattern": "^bytes=([0-9]{1,18}-[0-9]{0,18}|-[0-9]{1,18})$"}, where="header"), P("If-None-Match", "ETag(s); 304 when one matches.", where="header"), P("If-Range", "ETag; the Range applies only if it matches.", where="header")]
DL = {"200": {"description": "The whole document, streamed.", "headers": dict(DOWNLOAD_HEADERS, **{"Repr-Digest": {"schema": {"type": "string"}, "description": "sha-256 of the plaintext, when recorded."}}), "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
      "206": {"description": "The requested range.", "headers": dict(DOWNLOAD_HEADERS, **{"Content-Range": {"schema": {"type": "string"}}}), "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
      "304": {"description": "Not modified (If-None-Match matched)."},
      "404": NF, "416": prob(416, "Range not satisfiable (Content-Range: bytes */size).")}
HEAD = {"200": {"description": "Headers only.", "headers": DOWNLOAD_HEADERS}, "304": {"description": "Not modified."}, "404": NF}
paths = {
 "/v1/applicants/{applicant}/documents": {
   "parameters": [APPLICANT],
   "post": op("Upload a document (streamed)", ["agent", "uploader"], {
       "201": {"description": "Stored; durable before this answer.", "headers": {"Location": {"schema": {"type": "string"}}}, "content": jsonc("Document")},
       "413": prob(413, "Body over the configured limit (checked while streaming; nothing stored)."),
       "415": prob(415, "Declared or sniffed content type not allowed for the category (nothing stored)."),
       "408": prob(408, "The client stalled."),
       "400": prob(400, "Malformed request, or Content-Digest mismatch (type digest-mismatch; nothing stored).")},
       params=[P("category", "Document category.", {"type": "string", "enum": ["id_document", "pay_stub", "bank_statement", "credit_report", "background_check", "lease", "other"]}, where="query") | {"required": True},
               P("filename", "Original file name (else from Content-Disposition).", where="query"),
               P("Content-Disposition", "`attachment; filename*=UTF-8''...`", where="header"),
               P("Content-Digest", "RFC 9530 `sha-256=:<base64>:` of the plaintext; checked before commit.", {"type": "string", "pattern": "^(.*, *)?sha-256=:[A-Za-z0-9+/]{43}=:(, *.*)?$"}, where="header")],
       body={"required": True, "description": "The raw file bytes. The declared type must be allowed for the category and match the sniffed content (else 415): PDF and images for papers, anything but executables, markup and scripts for `other`.", "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in ["application/pdf", "image/jpeg", "image/png", "image/tiff", "image/heic", "image/heif", "image/webp", "text/plain", "application/octet-stream"]}}),
   "get": op("List an applicant's documents (paginated, oldest first)", ["agent"], {"200": {"description": "One page.", "content": jsonc("DocumentPage")}},
       params=[P("limit", "1-1000 (default 100).", {"type": "integer", "minimum": 1, "maximum": 1000}, where="query"), P("cursor", "`next_cursor` of the previous page.", {"type": "string", "pattern": "^-?[0-9]{1,19}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}, where="query")]),
 },
 "/v1/documents/{id}": {
   "parameters": [DOC],
   "get": op("Download a document (streamed; Range, ETag)", ["agent"], DL, params=RANGE_PARAMS),
   "head": op("A document's download headers", ["agent"], HEAD, params=RANGE_PARAMS[1:2]),
   "delete": op("Delete a document", ["agent"], {"204": {"description": "Deleted (its data key is gone; the blob follows)."}, "404": NF, "409": prob(409, "Under legal hold.")}),
 },
 "/v1/documents/{id}/metadata": {"parameters": [DOC], "get": op("A document's metadata", ["agent"], {"200": {"description": "Metadata.", "content": jsonc("Document")}, "404": NF})},
 "/v1/documents/{id}/legal-hold": {"parameters": [DOC],
   "put": op("Place a legal hold on a document", ["admin"], {"204": {"description": "Held."}, "404": NF}),
   "delete": op("Lift a document's legal hold", ["admin"], {"204": {"description": "Lifted."}, "404": NF})},
 "/v1/documents/{id}/share-links": {"parameters": [DOC],
   "post": op("Create a view-only share link", ["agent"], {"201": {"description": "The link; its token is shown only here.", "content": jsonc("ShareLink")}, "404": NF, "415": prob(415, "Not application/json.")},
       body={"required": True, "content": jsonc("ShareLinkRequest")})},
 "/v1/share-links/{id}": {"parameters": [P("id", "Share link id (32 hex digits).", {"type": "string", "pattern": "^[0-9a-f]{32}$"})],
   "delete": op("Revoke a share link", ["agent"], {"204": {"description": "Revoked."}, "404": NF})},
 "/v1/shared/{token}": {"parameters": [P("token", "The share link token.")],
   "get": op("Download a shared document", [], dict(DL, **{"404": prob(404, "Unknown token."), "410": prob(410, "Expired, revoked or used up.")}), params=RANGE_PARAMS, public=True, desc="Each GET that serves bytes uses one view; HEAD, 304, 400 and 416 answers use none."),
   "head": op("A shared document's headers", [], dict(HEAD, **{"404": prob(404, "Unknown token."), "410": prob(410, "Expired, revoked or used up.")}), public=True)},
 "/v1/applicants/{applicant}": {"parameters": [APPLICANT],
   "delete": op("Erase an applicant (crypto-shredding)", ["admin"], {"200": {"description": "The erasure receipt.", "content": jsonc("ErasureReceipt")}, "404": NF, "409": prob(409, "Under legal hold.")})},
 "/v1/applicants/{applicant}/close": {"parameters": [APPLICANT],
   "post": op("Close an application (starts the retention clock)", ["admin", "agent"], {"204": {"description": "Closed."}, "404": NF})},
 "/v1/applicants/{applicant}/export": {"parameters": [APPLICANT],
   "get": op("Export an applicant's documents (streamed tar with manifest.json and manifest.csv)", ["admin"], {"200": {"description": "The archive.", "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}}, "404": NF})},
 "/v1/applicants/{applicant}/legal-hold": {"parameters": [APPLICANT],
   "put": op("Place a legal hold on an applicant", ["admin"], {"204": {"description": "Held."}, "404": NF}),
   "delete": op("Lift an applicant's legal hold", ["admin"], {"204": {"description": "Lifted."}, "404": NF})},
 "/v1/retention-policy": {
   "get": op("The tenant's retention policy", ["admin"], {"200": {"description": "Policy.", "content": jsonc("RetentionPolicy")}}),
   "put": op("Replace the retention policy", ["admin"], {"200": {"description": "The policy now in force.", "content": jsonc("RetentionPolicy")}, "415": prob(415, "Not application/json.")}, body={"required": True, "content": jsonc("RetentionPolicy")})},
 "/v1/purge": {"post": op("Purge what is due (or list it, dry run)", ["purge"], {"200": {"description": "What was (or would be) removed.", "content": jsonc("PurgeResult")}, "415": prob(415, "Not application/json.")}, body={"required": True, "content": jsonc("PurgeRequest")})},
 "/v1/api-keys": {"post": op("Create an API key for this tenant", ["admin"], {"201": {"description": "The key, shown only here.", "content": jsonc("NewApiKey")}, "415": prob(415, "Not application/json.")}, body={"required": True, "content": jsonc("NewApiKeyRequest")})},
 "/v1/api-keys/{id}": {"parameters": [P("id", "API key id (32 hex digits).", {"type": "string", "pattern": "^[0-9a-f]{32}$"})], "delete": op("Revoke an API key", ["admin"], {"204": {"description": "Revoked."}, "404": NF})},
 "/v1/audit": {"get": op("This tenant's audit records (paginated)", ["auditor"], {"200": {"description": "Records.", "content": jsonc("AuditPage")}}, params=[P("after", "Sequence number to start after.", {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}, where="query"), P("limit", "1-1000 (default 100).", {"type": "integer", "minimum": 1, "maximum": 1000}, where="query")])},
 "/v1/audit/verify": {"get": op("Verify the audit chain and its checkpoints (result reused for 10 s)", ["auditor"], {"200": {"description": "The verification result.", "content": jsonc("AuditVerification")}})},
 "/openapi.json": {"get": op("This document", [], {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}}, public=True)},
 "/healthz": {"get": op("Liveness", [], {"200": {"description": "The process serves requests.", "content": {"application/json": {"schema": {"type": "object"}}}}}, public=True)},
 "/readyz": {"get": op("Readiness: the database and the blob store answer", [], {"200": {"description": "Ready.", "content": {"application/json": {"schema": {"type": "object"}}}}}, public=True)},
 "/metrics": {"get": op("Prometheus metrics", [], {"200": {"description": "Text exposition format.", "content": {"text/plain": {"schema": {"type": "string"}}}}}, public=True)},
}
# head entries for every get (axum serves HEAD on GET routes)
for path, item in paths.items():
    if "get" in item and "head" not in item:
        g = item["get"]
        h = {k: v for k, v in g.items() if k not in ("responses",)}
        h["summary"] = g["summary"] + " (headers only)"
        h["responses"] = {code: {kk: vv for kk, vv in r.items() if kk != "content"} if code.startswith("2") else r for code, r in g["responses"].items()}
        item["head"] = h
for path, item in paths.items():
    for m, o in item.items():
        if m == "parameters": continue
        name = m + "".join(part.strip("{}").replace("-", "_").replace(".", "_").title().replace("_", "") for part in path.split("/") if part)
        o["operationId"] = name
S = lambda **kw: dict(type="object", **kw)
schemas = {
 "Problem": S(required=["type", "title", "status"], properties={"type": {"type": "string", "description": "Stable: urn:document-vault:problem:<kind>."}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"}}),
 "Document": S(required=["id", "applicant", "category", "content_type", "size", "created_at", "legal_hold"], properties={"id": {"type": "string", "format": "uuid"}, "applicant": {"type": "string"}, "category": {"type": "string"}, "content_type": {"type": "string"}, "file_name": {"type": ["string", "null"]}, "size": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"}, "retain_until": {"type": ["string", "null"], "format": "date-time"}, "legal_hold": {"type": "boolean"}, "sha256": {"type": ["string", "null"], "description": "Hex SHA-256 of the plaintext, when computed."}}),
 "DocumentPage": S(required=["documents"], properties={"documents": {"type": "array", "items": {"$ref": "#/components/schemas/Document"}}, "next_cursor": {"type": ["string", "null"]}}),
 "ShareLinkRequest": S(required=["ttl_seconds", "max_views"], additionalProperties=False, properties={"ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 2592000}, "max_views": {"type": "integer", "minimum": 1, "maximum": 1000}}),
 "ShareLink": S(required=["id", "token", "url", "expires_at", "max_views"], properties={"id": {"type": "string"}, "token": {"type": "string"}, "url": {"type": "string"}, "document": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}, "max_views": {"type": "integer"}}),
 "ErasureReceipt": S(properties={k: {"type": t} for k, t in [("receipt_id", "string"), ("tenant_id", "string"), ("applicant_ref", "string"), ("erased_at_ms", "integer"), ("completed_at_ms", "integer"), ("actor", "string"), ("documents", "integer"), ("bytes", "integer"), ("by_category", "object"), ("audit_seq", "integer"), ("audit_mac", "string")]}),
 "RetentionPolicy": S(required=["inactivity_days", "retain_days"], additionalProperties=False, properties={"inactivity_days": {"type": "integer", "minimum": 1, "maximum": 36500}, "retain_days": {"type": "object", "propertyNames": {"enum": ["id_document", "pay_stub", "bank_statement", "credit_report", "background_check", "lease", "other"]}, "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 36500}}}),
 "PurgeRequest": S(additionalProperties=False, properties={"as_of": {"description": "Absent or null: now. Years 1-9999.", "oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "description": "Unix milliseconds", "minimum": -62135596800000, "maximum": 253402300799999}, {"type": "null"}]}, "dry_run": {"type": "boolean", "default": False}}),
 "PurgeResult": S(properties={"as_of": {"type": "string", "format": "date-time"}, "dry_run": {"type": "boolean"}, "count": {"type": "integer"}, "documents": {"type": "array", "items": {"type": "string"}}, "by_category": {"type": "object"}, "held": {"type": "integer"}}),
 "NewApiKeyRequest": S(required=["role"], additionalProperties=False, properties={"role": {"type": "string", "enum": ["admin", "agent", "uploader", "auditor", "purge"]}, "expires_at": {"description": "In the future (else 400); absent or null: never.", "oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "description": "Unix milliseconds", "minimum": -62135596800000, "maximum": 253402300799999}, {"type": "null"}]}}),
 "NewApiKey": S(required=["id", "api_key", "role"], properties={"id": {"type": "string"}, "api_key": {"type": "string"}, "role": {"type": "string"}, "expires_at": {"type": ["string", "null"]}}),
 "AuditPage": S(properties={"records": {"type": "array", "items": S(properties={"seq": {"type": "integer"}, "at": {"type": "string"}, "actor": {"type": "string"}, "action": {"type": "string"}, "target": {"type": "string"}, "outcome": {"type": "string"}, "mac": {"type": "string"}})}, "next_after": {"type": ["integer", "null"]}}),
 "AuditVerification": S(properties={"ok": {"type": "boolean"}, "problem": {"type": ["string", "null"], "enum": ["missing", "tampered", "truncated", "head_mismatch", "other", None]}, "verified_at": {"type": "string", "format": "date-time"}}),
}
doc = {"openapi": "3.1.0", "info": {"title": "Document vault API", "version": "1", "description": "Encrypted storage of rental applicants' documents. The tenant is always the API key's; see docs/API.md."},
       "servers": [{"url": "/"}],
       "security": [{"bearer": []}],
       "paths": paths,
       "components": {"responses": COMMON_DEFS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key: vk_<32 hex>_<64 hex>."}}, "schemas": schemas}}
print(json.dumps(doc, indent=2))
