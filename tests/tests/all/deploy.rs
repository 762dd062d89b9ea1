//! Deployment checks that need no AWS account:
//! - `template.yaml` agrees with the workspace (every function crate has a resource, every
//!   resource a crate, exactly the routes of hubbub-core's `RouteKey`, each with an integration
//!   to its function, a sample event and a place in the deployment, every function the
//!   environment its configuration requires, and exactly the HTTP API routes of
//!   `http_api::HttpRoute` on the http-api function);
//! - the migrations custom resource migrates a real database and answers CloudFormation;
//! - [`ops`]: secrets, the database connection budget, logs and alarms.

mod ops;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use hubbub_core::config::{ConfigError, FromLookup, Lookup, PostgresConfig};
use hubbub_core::routes::RouteKey;
use hubbub_core::store::migrate::MIGRATIONS;
use hubbub_core::store::postgres::Database;
use serde_json::{Value as Json, json};
use serde_norway::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn template() -> Value {
    let text = std::fs::read_to_string(format!("{ROOT}/template.yaml")).expect("template.yaml");
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

/// Untags `!Ref`, `!Sub`, `!GetAtt`... so values can be compared.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

fn tag(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string()),
        _ => None,
    }
}

fn s(v: &Value) -> Option<&str> {
    untag(v).as_str()
}

/// The binaries of the crates under `functions/`, from `cargo metadata`; each crate must be a
/// default member of the workspace.
fn function_binaries() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(ROOT)
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Json = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let default_members: BTreeSet<&str> = meta["workspace_default_members"]
        .as_array()
        .expect("workspace_default_members (cargo 1.71 and later)")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    let mut bins = BTreeSet::new();
    for pkg in meta["packages"].as_array().expect("packages") {
        let manifest = pkg["manifest_path"].as_str().unwrap_or_default();
        if !manifest.contains("/functions/") {
            continue;
        }
        // `cargo lambda build` at the root builds the default members only.
        assert!(
            pkg["id"]
                .as_str()
                .is_some_and(|id| default_members.contains(id)),
            "{manifest}: a function crate belongs in the root Cargo.toml's default-members"
        );
        let pkg_bins: Vec<String> = pkg["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .filter(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bin"))
            })
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(
            pkg_bins.len(),
            1,
            "{manifest}: one Lambda binary per function crate"
        );
        bins.extend(pkg_bins);
    }
    bins
}

type ConfigCheck = fn(Lookup<'_>) -> Result<(), ConfigError>;

fn check<C: FromLookup>(get: Lookup<'_>) -> Result<(), ConfigError> {
    C::from_lookup(get).map(drop)
}

/// Each function binary and the configuration its `main.rs` reads.
fn config_checks() -> BTreeMap<&'static str, ConfigCheck> {
    BTreeMap::from([
        ("authorizer", check::<authorizer::Config> as ConfigCheck),
        ("connect", check::<connect::Config>),
        ("disconnect", check::<disconnect::Config>),
        ("send-message", check::<send_message::Config>),
        ("rooms", check::<rooms::Config>),
        ("default-route", check::<default_route::Config>),
        ("migrate", check::<migrate::Config>),
        ("http-api", check::<http_api::Config>),
        ("fanout-worker", check::<fanout_worker::Config>),
        ("maintenance", check::<maintenance::Config>),
    ])
}

/// A value for an environment variable whose template value is resolved at deploy time.
fn stand_in(var: &str) -> String {
    match var {
        "DATABASE_URL" => "postgres://hubbub:secret@db.example.com:5432/hubbub".into(),
        "HUBBUB_JWT_SECRET" => "k".repeat(48),
        "HUBBUB_JWT_SECRET_ARN" | "HUBBUB_DATABASE_SECRET_ARN" => {
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hubbub/stand-in-AbCdEf".into()
        }
        // RDS Proxy's endpoint when the stack has one.
        "HUBBUB_DATABASE_HOST" => "hubbub-db.proxy-abc.eu-west-1.rds.amazonaws.com".into(),
        // Parameters that default to empty: no external issuer.
        "HUBBUB_EXTERNAL_ISSUER" | "HUBBUB_EXTERNAL_AUDIENCE" | "HUBBUB_EXTERNAL_JWKS_URL" => {
            String::new()
        }
        "HUBBUB_MANAGEMENT_ENDPOINT" => {
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod".into()
        }
        // The post budget parameters' defaults.
        "HUBBUB_POST_RATE_PER_SEC" => "500".into(),
        "HUBBUB_POST_BURST" => "250".into(),
        _ => "stand-in".into(),
    }
}

fn env_of(globals: &Value, props: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for vars in [
        &globals["Environment"]["Variables"],
        &props["Environment"]["Variables"],
    ] {
        if let Some(map) = untag(vars).as_mapping() {
            for (k, v) in map {
                let k = s(k).expect("env names are strings").to_owned();
                // A literal is checked as written; anything resolved at deploy time stands in.
                let value = match (tag(v), untag(v).as_str()) {
                    (None, Some(lit)) => lit.to_owned(),
                    _ => stand_in(&k),
                };
                env.insert(k, value);
            }
        }
    }
    env
}

/// Names `${Name.Arn}` / `${Name}` inside a `!Sub` string.
fn sub_refs(v: &Value) -> Vec<String> {
    let text = s(v).unwrap_or_default();
    text.split("${")
        .skip(1)
        .filter_map(|p| p.split('}').next())
        .map(|r| r.split('.').next().unwrap_or(r).to_owned())
        .collect()
}

#[test]
fn template_matches_the_workspace() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("Resources");
    let globals = &t["Globals"]["Function"];
    let by_name: BTreeMap<String, &Value> = resources
        .iter()
        .map(|(k, v)| (s(k).expect("logical id").to_owned(), v))
        .collect();
    let of_type = |ty: &str| -> Vec<(&String, &Value)> {
        by_name
            .iter()
            .filter(|(_, r)| s(&r["Type"]) == Some(ty))
            .map(|(k, v)| (k, *v))
            .collect()
    };

    // Functions <-> crates.
    let crates = function_binaries();
    let checks = config_checks();
    assert_eq!(
        crates.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        checks.keys().copied().collect::<BTreeSet<_>>(),
        "every function crate needs a config check here (and nothing else)"
    );
    let mut function_of_resource = BTreeMap::new();
    for (name, r) in of_type("AWS::Serverless::Function") {
        let props = &r["Properties"];
        assert_eq!(
            s(&r["Metadata"]["BuildMethod"]),
            Some("rust-cargolambda"),
            "{name}"
        );
        let bin = s(&r["Metadata"]["BuildProperties"]["Binary"])
            .unwrap_or_else(|| panic!("{name} names no Binary"))
            .to_owned();
        assert!(
            crates.contains(&bin),
            "{name} builds `{bin}`, which is no crate in functions/"
        );
        let prop = |k: &str| {
            if props[k].is_null() {
                &globals[k]
            } else {
                &props[k]
            }
        };
        assert_eq!(s(prop("Runtime")), Some("provided.al2023"), "{name}");
        assert_eq!(s(prop("Handler")), Some("bootstrap"), "{name}");
        assert_eq!(
            untag(prop("Architectures"))
                .as_sequence()
                .map(|a| a.iter().filter_map(s).collect::<Vec<_>>()),
            Some(vec!["arm64"]),
            "{name}"
        );
        // The function must start with the environment the template gives it.
        let env = env_of(globals, props);
        let lookup = |k: &str| env.get(k).cloned();
        checks[bin.as_str()](&lookup)
            .unwrap_or_else(|e| panic!("{name} ({bin}) would fail at init: {e}"));
        function_of_resource.insert(name.clone(), bin);
    }
    let resourced: BTreeSet<&String> = function_of_resource.values().collect();
    for c in &crates {
        assert!(
            resourced.contains(c),
            "crate `{c}` has no AWS::Serverless::Function"
        );
    }

    // The HTTP API: exactly the routes of http_api::HttpRoute, all on the http-api function.
    let mut http_routes = BTreeSet::new();
    for (name, r) in of_type("AWS::Serverless::Function") {
        let Some(events) = untag(&r["Properties"]["Events"]).as_mapping() else {
            continue;
        };
        for (event, e) in events {
            if s(&e["Type"]) != Some("HttpApi") {
                continue;
            }
            let event = s(event).unwrap_or_default();
            assert_eq!(
                function_of_resource[name], "http-api",
                "{name}.{event}: HTTP API routes belong to the http-api function"
            );
            let props = &e["Properties"];
            let method = s(&props["Method"]).unwrap_or_else(|| panic!("{event}: Method"));
            let path = s(&props["Path"]).unwrap_or_else(|| panic!("{event}: Path"));
            let route = http_api::HttpRoute::ALL
                .into_iter()
                .find(|r| r.method() == method && r.path() == path)
                .unwrap_or_else(|| {
                    panic!("{event}: `{method} {path}` is no route of http_api::HttpRoute")
                });
            assert!(
                http_routes.insert(route),
                "{event}: `{method} {path}` is declared twice"
            );
        }
    }
    assert_eq!(
        http_routes,
        http_api::HttpRoute::ALL
            .into_iter()
            .collect::<BTreeSet<_>>(),
        "every http_api::HttpRoute has an HttpApi event in template.yaml"
    );

    // The WebSocket API.
    let apis = of_type("AWS::ApiGatewayV2::Api");
    let ws: Vec<_> = apis
        .iter()
        .filter(|(_, r)| s(&r["Properties"]["ProtocolType"]) == Some("WEBSOCKET"))
        .collect();
    assert_eq!(
        ws.len(),
        1,
        "one WEBSOCKET API (ProtocolType must be exactly WEBSOCKET)"
    );
    let ws_props = &ws[0].1["Properties"];
    assert_eq!(
        s(&ws_props["RouteSelectionExpression"]),
        Some("$request.body.action")
    );

    // Integrations -> function resources.
    let integration_fn: BTreeMap<&String, String> = of_type("AWS::ApiGatewayV2::Integration")
        .into_iter()
        .map(|(name, r)| {
            assert_eq!(
                s(&r["Properties"]["IntegrationType"]),
                Some("AWS_PROXY"),
                "{name}"
            );
            let target = sub_refs(&r["Properties"]["IntegrationUri"])
                .into_iter()
                .find(|n| function_of_resource.contains_key(n))
                .unwrap_or_else(|| panic!("{name} integrates no function of this template"));
            (name, target)
        })
        .collect();

    // Routes: each with the right integration, a string key, and a sample event.
    let sample_routes: BTreeSet<String> = std::fs::read_dir(format!("{ROOT}/events"))
        .expect("events")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| {
            let v: Json = serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?;
            v["requestContext"]["routeKey"].as_str().map(str::to_owned)
        })
        .collect();
    let routes = of_type("AWS::ApiGatewayV2::Route");
    let mut seen = BTreeSet::new();
    for (name, r) in &routes {
        let key = match untag(&r["Properties"]["RouteKey"]) {
            Value::String(k) => k.clone(),
            other => panic!("{name}: RouteKey must be a string, got {other:?}"),
        };
        let route = RouteKey::parse(&key)
            .unwrap_or_else(|| panic!("{name}: route `{key}` is no RouteKey of hubbub-core"));
        let integration = sub_refs(&r["Properties"]["Target"])
            .pop()
            .unwrap_or_default();
        let function = integration_fn
            .get(&integration)
            .unwrap_or_else(|| panic!("{name}: Target names no integration"));
        assert_eq!(
            (function.as_str(), function_of_resource[function].as_str()),
            (route.function().logical_id(), route.function().binary()),
            "route `{key}` must reach {:?}'s integration",
            route.function()
        );
        assert!(
            sample_routes.contains(&key),
            "route `{key}` has no sample event in events/"
        );
        if route == RouteKey::Connect {
            assert_eq!(
                s(&r["Properties"]["AuthorizationType"]),
                Some("CUSTOM"),
                "$connect is authorised"
            );
        }
        assert!(seen.insert(route), "route `{key}` is declared twice");
    }
    assert_eq!(
        seen,
        RouteKey::ALL.into_iter().collect::<BTreeSet<_>>(),
        "every RouteKey has a route in template.yaml"
    );

    // The deployment snapshots every route and route response, and depends on nothing else.
    let deployments = of_type("AWS::ApiGatewayV2::Deployment");
    assert_eq!(deployments.len(), 1);
    let depends: BTreeSet<&str> = deployments[0].1["DependsOn"]
        .as_sequence()
        .map(|d| d.iter().filter_map(s).collect())
        .unwrap_or_default();
    let snapshotted: BTreeSet<&str> = routes
        .iter()
        .chain(&of_type("AWS::ApiGatewayV2::RouteResponse"))
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        depends, snapshotted,
        "the deployment must depend on exactly the routes and route responses"
    );

    // Every integration's function and the authorizer may be invoked by API Gateway, scoped.
    let permitted: BTreeSet<String> = of_type("AWS::Lambda::Permission")
        .into_iter()
        .filter(|(_, r)| !r["Properties"]["SourceArn"].is_null())
        .filter_map(|(_, r)| s(&r["Properties"]["FunctionName"]).map(str::to_owned))
        .collect();
    let authorizers = of_type("AWS::ApiGatewayV2::Authorizer");
    let authorizer_fns: Vec<String> = authorizers
        .iter()
        .flat_map(|(_, r)| sub_refs(&r["Properties"]["AuthorizerUri"]))
        .filter(|n| function_of_resource.contains_key(n))
        .collect();
    assert_eq!(
        authorizer_fns.len(),
        1,
        "one authorizer, backed by a function of this template"
    );
    for f in integration_fn.values().chain(authorizer_fns.iter()) {
        assert!(
            permitted.contains(f),
            "{f} lacks an AWS::Lambda::Permission with a SourceArn"
        );
    }
}

/// The answers a sink received: (Content-Type, body).
type Answers = Arc<Mutex<Vec<(Option<String>, Json)>>>;

/// A real HTTP server standing in for CloudFormation's pre-signed S3 URL.
async fn response_sink() -> (String, Answers) {
    let seen: Answers = Arc::default();
    let app = axum::Router::new()
        .route(
            "/response",
            axum::routing::put(
                |axum::extract::State(seen): axum::extract::State<Answers>,
                 headers: axum::http::HeaderMap,
                 body: String| async move {
                    let ct = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let v: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
                    seen.lock().expect("lock").push((ct, v));
                    ""
                },
            ),
        )
        .with_state(seen.clone());
    let addr = hubbub_tests::serve(app).await;
    (format!("http://{addr}/response"), seen)
}

fn cfn_event(
    kind: &str,
    response_url: &str,
) -> hubbub_core::aws_lambda_events::cloudformation::CloudFormationCustomResourceRequest {
    let mut v = hubbub_tests::events::raw("migrate-create");
    v["RequestType"] = json!(kind);
    v["ResponseURL"] = json!(response_url);
    if kind != "Create" {
        v["PhysicalResourceId"] = json!(migrate::PHYSICAL_ID);
    }
    if kind == "Update" {
        v["OldResourceProperties"] = json!({"CodeVersion": "0"});
    }
    serde_json::from_value(v).expect("custom resource event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_custom_resource_migrates_on_postgres_and_answers_cloudformation() {
    let url = hubbub_tests::fresh_database().await;
    let (sink, seen) = response_sink().await;
    let deps = migrate::MigrateDeps {
        db: Database::connect(&PostgresConfig { url: url.clone() }, 1).expect("pool"),
        http: migrate::http_client(),
    };
    let all: Vec<String> = MIGRATIONS.iter().map(|m| m.version.to_string()).collect();

    let created = migrate::handle(&deps, &cfn_event("Create", &sink))
        .await
        .expect("create answered");
    let updated = migrate::handle(&deps, &cfn_event("Update", &sink))
        .await
        .expect("update answered");
    let deleted = migrate::handle(&deps, &cfn_event("Delete", &sink))
        .await
        .expect("delete answered");

    let answers = seen.lock().expect("lock").clone();
    assert_eq!(answers.len(), 3, "one PUT per event");
    for (ct, body) in &answers {
        assert_eq!(
            ct.as_deref().unwrap_or_default(),
            "",
            "pre-signed URLs want no content type"
        );
        assert_eq!(body["Status"], "SUCCESS", "{body}");
        assert_eq!(body["PhysicalResourceId"], migrate::PHYSICAL_ID);
        assert_eq!(body["LogicalResourceId"], "Migrations");
        assert_eq!(body["RequestId"], "6e5f0d6a-8f1c-4b2a-9d3e-7a6b5c4d3e2f");
    }
    assert_eq!(
        created.data.get("Applied"),
        Some(&all.join(",")),
        "Create applies everything"
    );
    assert_eq!(
        updated.data.get("Applied").map(String::as_str),
        Some(""),
        "Update finds nothing new"
    );
    assert!(deleted.data.is_empty());

    // Delete kept the data: the schema is still there.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let n: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .expect("schema_migrations survives Delete")
        .get(0);
    assert_eq!(n, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn a_failed_migration_still_answers_cloudformation() {
    let (sink, seen) = response_sink().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let deps = migrate::MigrateDeps {
        db: Database::connect(
            &PostgresConfig {
                url: format!("postgres://hubbub:secret-password@127.0.0.1:{port}/nowhere"),
            },
            1,
        )
        .expect("pool"),
        http: migrate::http_client(),
    };
    let answer = migrate::handle(&deps, &cfn_event("Create", &sink))
        .await
        .expect("answered");
    let answers = seen.lock().expect("lock").clone();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].1["Status"], "FAILED");
    let reason = answers[0].1["Reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty());
    assert!(
        !reason.contains("secret-password"),
        "no credential in the stack events: {reason}"
    );
    assert_eq!(
        serde_json::to_value(&answer.status).expect("status"),
        "FAILED"
    );

    // An unreachable ResponseURL is the function's own error (the runtime reports it).
    let err = migrate::handle(
        &deps,
        &cfn_event("Delete", &format!("http://127.0.0.1:{port}/r")),
    )
    .await
    .expect_err("nobody to answer to");
    assert!(matches!(err, migrate::RespondError::Send(_)), "{err:?}");
}
