//! `GET /openapi.json`: the OpenAPI 3.0 document, built from the route table
//! ([`crate::routes::ROUTES`]) so that it lists exactly the routes the router serves. Each route
//! points at one of the operation functions below for its parameters, bodies and replies; the
//! schemas are in [`components`].

use serde_json::{json, Map, Value};

use crate::limits::Limits;
use crate::request::AUDIO_CONTENT_TYPES;
use crate::routes::ROUTES;

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut operation = (route.operation)();
        if let Some(object) = operation.as_object_mut() {
            object.insert("operationId".into(), route.operation_id.into());
            if route.write {
                object.insert("security".into(), json!([{"bearer": []}]));
                if let Some(responses) = object.get_mut("responses").and_then(Value::as_object_mut)
                {
                    responses.insert("401".into(), error("no or wrong bearer token"));
                    responses.insert(
                        "507".into(),
                        error("the disk is full: nothing was committed (insufficient_storage)"),
                    );
                }
            }
        }
        let item = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(item) = item.as_object_mut() {
            item.insert(route.method.as_str().into(), operation);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "PairAlign Search",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Query-by-example search over an audio archive. Errors are \
                {\"error\": {\"code\", \"message\"}}. Writes (uploads, deletes) need \
                `Authorization: Bearer <token>` when the server was started with a token; \
                reads are open unless it was started with `--protect reads` (then every \
                route but /healthz and /openapi.json needs the token). `GET /` serves a search \
                console (a web page over this API; not an API route). Searches see committed \
                data only. Filters are limited before parsing (16 KiB, 8 levels of \
                parentheses, 256 terms, 16 ranges: 400 beyond). Request heads must arrive \
                within 10 s and fit in 32 KiB (431 beyond); connections beyond the server's \
                cap get 503.",
        },
        "paths": paths,
        "components": components(),
    })
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
    })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// `top`: hits to return, 1 to the server's maximum (100 by default).
fn top_schema() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": Limits::default().max_top,
           "description": "hits to return (default 10; at most the server's limit, 100 by default)"})
}

/// An edit budget written as a string: digits, optionally a fraction (`3`, `0.25`, `.25`).
fn budget_string() -> Value {
    json!({"type": "string", "pattern": "^[0-9]*\\.?[0-9]+$"})
}

fn id_path(description: &str) -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": description,
           "schema": {"type": "string"}})
}

/// The raw audio content types, each a binary body.
fn audio_bodies() -> Map<String, Value> {
    AUDIO_CONTENT_TYPES
        .iter()
        .map(|(t, _)| {
            (
                t.to_string(),
                json!({"schema": {"type": "string", "format": "binary"}}),
            )
        })
        .collect()
}

/// How filters are written, with the catalog's fields.
fn filter_syntax() -> String {
    let fields: Vec<String> = pairalign_archive::FILTER_FIELDS
        .iter()
        .map(|(name, what)| format!("`{name}` ({what})"))
        .collect();
    format!(
        "tantivy query syntax over the catalog, e.g. `tags:interview AND duration:>60`; \
         fields: {}",
        fields.join(", ")
    )
}

fn overloaded() -> Value {
    error("every search slot is busy, the writer's queue is full, or the server is shutting down; retry after `Retry-After` seconds")
}

pub(crate) fn search() -> Value {
    let mut content = audio_bodies();
    content.insert(
        "multipart/form-data".into(),
        json!({
            "schema": {
                "type": "object",
                "required": ["file"],
                "additionalProperties": false,
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "the clip"},
                    "options": {"$ref": "#/components/schemas/SearchOptions"},
                },
            },
            "encoding": {"options": {"contentType": "application/json"}},
        }),
    );
    content.insert(
        "application/json".into(),
        json!({"schema": {"$ref": "#/components/schemas/TokenSearch"}}),
    );
    json!({
        "summary": "Query by example: where does this clip (0.5 to 60 s) occur? Or search a token string.",
        "description": "A raw audio body takes its options from the query string; multipart takes \
            a `file` part and an optional `options` JSON part; a JSON body is a token search.",
        "parameters": [
            query("top", "hits to return (raw audio bodies)", top_schema()),
            query("k", "edit budget: an integer, or a fraction of the query length below 1 (raw audio bodies)", budget_string()),
            query("filter", &format!("metadata filter (raw audio bodies); {}", filter_syntax()), json!({"type": "string"})),
        ],
        "requestBody": {"required": true, "content": content},
        "responses": {
            "200": ok("the hits", "SearchResults"),
            "400": error("bad options, a clip outside 0.5 to 60 s, a bad token string or filter"),
            "408": error("the request took longer than the request timeout"),
            "409": error("the archive was built with another tokenizer"),
            "413": error("the body is larger than the limit"),
            "415": error("unsupported content type"),
            "422": error("the audio cannot be decoded"),
            "503": overloaded(),
        },
    })
}

pub(crate) fn upload() -> Value {
    let mut content = audio_bodies();
    content.insert(
        "multipart/form-data".into(),
        json!({
            "schema": {
                "type": "object",
                "required": ["file"],
                "additionalProperties": false,
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "the audio"},
                    "metadata": {"$ref": "#/components/schemas/UploadMetadata"},
                },
            },
            "encoding": {"metadata": {"contentType": "application/json"}},
        }),
    );
    json!({
        "summary": "Add a recording. Short ones are committed before the 201 reply; longer ones are queued as a job (202).",
        "description": "A raw audio body takes its metadata from the query string (`tags` \
            comma-separated); multipart takes a `file` part and an optional `metadata` JSON part.",
        "parameters": [
            query("id", "the asset id (default: derived from the content)", json!({"type": "string", "minLength": 1})),
            query("title", "a title", json!({"type": "string"})),
            query("tags", "comma-separated tags", json!({"type": "string"})),
            query("file_name", "the original file name", json!({"type": "string"})),
        ],
        "requestBody": {"required": true, "content": content},
        "responses": {
            "201": ok("committed: searches see it", "Asset"),
            "202": ok("queued: follow the job (Location header)", "Job"),
            "400": error("bad metadata (too many or too long tags, a long title) or id"),
            "408": error("the request took longer than the request timeout (a queued write still completes)"),
            "409": error("the id or the content is already in the archive, or the archive was built with another tokenizer"),
            "413": error("the body is larger than the limit"),
            "415": error("unsupported content type"),
            "422": error("the audio cannot be decoded"),
            "503": overloaded(),
        },
    })
}

pub(crate) fn list_assets() -> Value {
    json!({
        "summary": "List assets, optionally filtered by metadata.",
        "parameters": [
            query("filter", &filter_syntax(), json!({"type": "string"})),
            query("offset", "assets to skip", json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})),
            query("limit", "assets per page (default 50; at most the server's limit, 1,000 by default)",
                json!({"type": "integer", "minimum": 1, "maximum": Limits::default().max_list_limit})),
        ],
        "responses": {
            "200": ok("one page", "AssetPage"),
            "400": error("a bad filter, offset or limit"),
        },
    })
}

pub(crate) fn get_asset() -> Value {
    json!({
        "summary": "One asset.",
        "parameters": [id_path("the asset id, percent-encoded (ids of indexed files are paths)")],
        "responses": {
            "200": ok("the asset", "Asset"),
            "404": error("no such asset"),
        },
    })
}

pub(crate) fn asset_audio() -> Value {
    let max = crate::audio::MAX_SPAN_MS;
    json!({
        "summary": "A span of an indexed recording as 16 kHz mono 16-bit PCM WAV, to listen to a hit.",
        "description": format!("The recording is the file the catalog names for the asset (never a \
            path from the request), decoded as it was indexed, so `start_ms` and `end_ms` are on \
            the timeline of the hits. At most {max} ms; an end past the recording's end is \
            clamped to it. Uploads keep no audio (404). Decoding takes a search slot."),
        "parameters": [
            id_path("the asset id, percent-encoded (ids of indexed files are paths)"),
            query("start_ms", "start, in milliseconds (default 0)",
                json!({"type": "integer", "minimum": 0})),
            query("end_ms", &format!("end (exclusive), in milliseconds, after start_ms and at most {max} ms after it (default start_ms + {max}, clamped to the recording)"),
                json!({"type": "integer", "minimum": 1})),
        ],
        "responses": {
            "200": {
                "description": "the span; the headers give the span it holds (the end clamped to the recording's)",
                "headers": {
                    "x-span-start-ms": {"schema": {"type": "integer"}},
                    "x-span-end-ms": {"schema": {"type": "integer"}},
                },
                "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
            },
            "400": error("a bad range: empty, longer than the limit, starting after the recording's end, or not integers"),
            "404": error("no such asset, or an upload (the server keeps no audio of uploads)"),
            "410": error("the recording was moved, deleted or changed since it was indexed"),
            "503": overloaded(),
        },
    })
}

pub(crate) fn delete_asset() -> Value {
    json!({
        "summary": "Delete an asset; committed before the reply.",
        "parameters": [id_path("the asset id, percent-encoded")],
        "responses": {
            "204": {"description": "deleted"},
            "404": error("no such asset"),
            "503": overloaded(),
        },
    })
}

pub(crate) fn compact() -> Value {
    json!({
        "summary": "Merge every segment into one, dropping deleted documents; committed before the reply. Queued behind the writes before it; searches go on meanwhile and see the merged archive once it is committed. Takes about as long as reading and writing the archive's segments once (seconds per hundred hours of audio).",
        "responses": {
            "200": ok("what the compaction did", "Compaction"),
            "503": overloaded(),
        },
    })
}

pub(crate) fn get_job() -> Value {
    json!({
        "summary": "An upload job: queued, running, done (with the asset) or failed (with the error). Jobs live in memory.",
        "parameters": [id_path("the job id")],
        "responses": {
            "200": ok("the job", "Job"),
            "404": error("no such job (or forgotten: a restart forgets jobs)"),
        },
    })
}

pub(crate) fn stats() -> Value {
    json!({
        "summary": "Documents, hours, tokens and bytes of the committed archive; the writer's queue.",
        "responses": {"200": ok("the statistics", "Stats")},
    })
}

pub(crate) fn healthz() -> Value {
    json!({
        "summary": "Liveness.",
        "responses": {"200": {
            "description": "the server answers",
            "content": {"application/json": {"schema": {
                "type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}},
            }}},
        }},
    })
}

pub(crate) fn metrics() -> Value {
    json!({
        "summary": "Prometheus metrics (text format 0.0.4).",
        "responses": {"200": {
            "description": "the metrics",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }},
    })
}

pub(crate) fn openapi() -> Value {
    json!({
        "summary": "This document.",
        "responses": {"200": {
            "description": "the OpenAPI 3.0 document",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }},
    })
}

fn components() -> Value {
    let budget = json!({
        "description": "edit budget: an integer is absolute, a number or string below 1 a fraction of the query length",
        "oneOf": [{"type": "integer", "minimum": 0}, {"type": "number", "minimum": 0, "maximum": 1}, budget_string()],
    });
    json!({
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": [
                            "bad_request", "unauthorized", "not_found", "gone", "no_route",
                            "method_not_allowed", "payload_too_large", "unsupported_media_type",
                            "undecodable_audio", "conflict", "tokenizer_mismatch", "timeout",
                            "overloaded", "shutting_down", "internal",
                        ]},
                        "message": {"type": "string"},
                    },
                }},
            },
            "SearchOptions": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "top": top_schema(),
                    "k": budget,
                    "filter": {"type": "string", "description": filter_syntax()},
                },
            },
            "TokenSearch": {
                "type": "object",
                "additionalProperties": false,
                "required": ["tokens"],
                "properties": {
                    "tokens": {"type": "array", "minItems": 1, "maxItems": pairalign_engine::MAX_QUERY_TOKENS,
                               "items": {"type": "integer", "minimum": 0, "maximum": 65535}},
                    "top": top_schema(),
                    "k": budget,
                    "filter": {"type": "string", "description": filter_syntax()},
                },
            },
            "Hit": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "the asset id"},
                    "start": {"type": "integer", "description": "first matched token"},
                    "end": {"type": "integer", "description": "one past the last matched token"},
                    "start_ms": {"type": "integer"},
                    "end_ms": {"type": "integer"},
                    "distance": {"type": "integer", "description": "edit distance"},
                    "norm_distance": {"type": "number", "description": "distance / query tokens"},
                },
            },
            "SearchResults": {
                "type": "object",
                "properties": {
                    "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                    "query_tokens": {"type": "integer"},
                    "k": {"type": "integer", "nullable": true},
                    "lossless": {"type": "boolean"},
                    "tokenize_ms": {"type": "number", "nullable": true},
                    "search_ms": {"type": "number"},
                },
            },
            "UploadMetadata": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "id": {"type": "string", "minLength": 1, "description": "1 to 1,024 bytes"},
                    "title": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "file_name": {"type": "string"},
                },
            },
            "Asset": {
                "type": "object",
                "description": "the catalog entry of one document",
                "properties": {
                    "id": {"type": "string", "description": "a file's canonical path, or the id an upload was given (default: from the content hash)"},
                    "path": {"type": "string", "nullable": true, "description": "where the audio was read from; null for uploads"},
                    "file_name": {"type": "string", "nullable": true},
                    "title": {"type": "string", "nullable": true},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "duration_s": {"type": "number"},
                    "format": {"type": "string", "nullable": true, "description": "container/codec, e.g. wav/pcm_s16le"},
                    "sample_rate": {"type": "integer", "nullable": true, "description": "the file's own rate in Hz"},
                    "content_hash": {"type": "string", "description": "BLAKE3 of the file's bytes, hex"},
                    "tokens": {"type": "integer"},
                    "indexed_at": {"type": "string", "description": "UTC, RFC 3339"},
                    "file_size": {"type": "integer"},
                    "modified_ns": {"type": "integer"},
                },
            },
            "AssetPage": {
                "type": "object",
                "properties": {
                    "total": {"type": "integer"},
                    "offset": {"type": "integer"},
                    "assets": {"type": "array", "items": {"$ref": "#/components/schemas/Asset"}},
                },
            },
            "Job": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
                    "file_name": {"type": "string", "nullable": true},
                    "duration_s": {"type": "number"},
                    "asset": {"$ref": "#/components/schemas/Asset"},
                    "error": {"$ref": "#/components/schemas/Error/properties/error"},
                },
            },
            "Compaction": {
                "type": "object",
                "required": ["segments_before", "segments_after", "docs", "bytes_before", "bytes_after", "took_ms"],
                "properties": {
                    "segments_before": {"type": "integer"},
                    "segments_after": {"type": "integer"},
                    "docs": {"type": "integer"},
                    "bytes_before": {"type": "integer"},
                    "bytes_after": {"type": "integer"},
                    "took_ms": {"type": "number"},
                },
            },
            "Stats": {
                "type": "object",
                "description": "the archive report (docs, hours, tokens, tokens_per_s, bytes, bytes_per_hour, storage, tokenizer) and the server's queues",
                "properties": {
                    "docs": {"type": "integer"},
                    "hours": {"type": "number"},
                    "tokens": {"type": "integer"},
                    "tokens_per_s": {"type": "number"},
                    "bytes": {"type": "integer"},
                    "bytes_per_hour": {"type": "number"},
                    "writer_queue": {"type": "integer"},
                    "searches_in_flight": {"type": "integer"},
                    "searches_queued": {"type": "integer"},
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_with_its_operation_id() {
        let doc = document();
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.as_str()];
            assert_eq!(op["operationId"], route.operation_id, "{route:?}");
            assert!(op["responses"].is_object(), "{route:?}");
            assert_eq!(op["security"].is_array(), route.write, "{route:?}");
        }
    }

    /// Every `$ref` points at a schema that exists.
    #[test]
    fn references_resolve() {
        let doc = document();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => collect_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
