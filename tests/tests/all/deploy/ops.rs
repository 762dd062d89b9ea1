//! What a deployment owes its operator, checked in `template.yaml`: secrets stay out of the
//! functions' configuration and each function may read only its own; PostgreSQL connections
//! are bounded (reserved concurrency per database function, an optional RDS Proxy); every log
//! group is the stack's own with a retention; alarms watch errors, throttles and fan-out.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use super::{s, tag, template, untag};

/// Connections per execution environment.
const POOL_PER_ENVIRONMENT: u64 = hubbub_core::runtime::LAMBDA_POOL_SIZE as u64;

/// The connections hubbub's functions may hold at the default parameters: what a
/// db.t4g.micro (the smallest RDS instance; max_connections = DBInstanceClassMemory / 9531392,
/// under 112) leaves after RDS's reserved slots and room for an operator.
const DEFAULT_CONNECTION_BUDGET: u64 = 75;

struct Template {
    t: Value,
}

impl Template {
    fn load() -> Self {
        Self { t: template() }
    }

    fn resources(&self) -> BTreeMap<String, &Value> {
        self.t["Resources"]
            .as_mapping()
            .expect("Resources")
            .iter()
            .map(|(k, v)| (s(k).expect("logical id").to_owned(), v))
            .collect()
    }

    fn of_type(&self, ty: &str) -> BTreeMap<String, &Value> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| s(&r["Type"]) == Some(ty))
            .collect()
    }

    fn functions(&self) -> BTreeMap<String, &Value> {
        self.of_type("AWS::Serverless::Function")
    }

    fn parameter_default(&self, name: &str) -> Option<u64> {
        let d = &self.t["Parameters"][name]["Default"];
        d.as_u64()
            .or_else(|| d.as_str().and_then(|v| v.parse().ok()))
    }
}

/// The logical id a `!Ref X` or `!GetAtt X.Arn` names.
fn target(v: &Value) -> Option<String> {
    match (tag(v).as_deref(), untag(v)) {
        (Some("!Ref"), Value::String(n)) => Some(n.clone()),
        (Some("!GetAtt"), Value::String(n)) => n.split('.').next().map(str::to_owned),
        (Some("!GetAtt"), Value::Sequence(parts)) => parts.first().and_then(s).map(str::to_owned),
        _ => None,
    }
}

fn env(f: &Value) -> BTreeMap<String, &Value> {
    untag(&f["Properties"]["Environment"]["Variables"])
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (s(k).expect("env name").to_owned(), v))
                .collect()
        })
        .unwrap_or_default()
}

/// Every IAM statement of a function's inline policies.
fn statements(f: &Value) -> Vec<&Value> {
    untag(&f["Properties"]["Policies"])
        .as_sequence()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["Statement"].as_sequence())
                .flatten()
                .collect()
        })
        .unwrap_or_default()
}

fn list(v: &Value) -> Vec<&Value> {
    match untag(v) {
        Value::Sequence(items) => items.iter().collect(),
        _ => vec![v],
    }
}

#[test]
fn template_keeps_secrets_out_of_function_configuration_and_scopes_each_read() {
    let t = Template::load();
    let secret_params = BTreeMap::from([
        ("HUBBUB_JWT_SECRET_ARN", "JwtSecretArn"),
        ("HUBBUB_DATABASE_SECRET_ARN", "DatabaseSecretArn"),
    ]);
    for (name, f) in t.functions() {
        let env = env(f);
        let mut may_read = BTreeSet::new();
        for (var, v) in &env {
            let text = format!("{v:?}");
            assert!(
                !text.contains("resolve:secretsmanager"),
                "{name}.{var}: a secret's value in the function's configuration, readable by anyone \
                 who may read the function; give it the secret's ARN instead"
            );
            assert!(
                !matches!(var.as_str(), "HUBBUB_JWT_SECRET" | "DATABASE_URL"),
                "{name}.{var}: secrets reach deployed functions as *_SECRET_ARN only"
            );
            if let Some(param) = secret_params.get(var.as_str()) {
                assert_eq!(target(v).as_deref(), Some(*param), "{name}.{var}");
                may_read.insert((*param).to_owned());
            }
        }
        // Exactly the secrets it names, nothing else.
        let mut reads = BTreeSet::new();
        for st in statements(f) {
            let actions: Vec<&str> = list(&st["Action"]).into_iter().filter_map(s).collect();
            for a in &actions {
                assert!(!a.contains('*'), "{name}: wildcard action {a}");
            }
            let resources = list(&st["Resource"]);
            for r in &resources {
                assert_ne!(s(r), Some("*"), "{name}: a statement on every resource");
            }
            if actions.iter().any(|a| a.starts_with("secretsmanager:")) {
                assert_eq!(actions, ["secretsmanager:GetSecretValue"], "{name}");
                for r in resources {
                    reads.insert(target(r).unwrap_or_else(|| panic!("{name}: {r:?}")));
                }
            }
        }
        assert_eq!(
            reads, may_read,
            "{name} may read exactly the secrets whose ARNs it is given"
        );
    }
}

#[test]
fn template_bounds_postgresql_connections() {
    let t = Template::load();
    let mut total = 0;
    for (name, f) in t.functions() {
        let env = env(f);
        let reads_db =
            env.contains_key("HUBBUB_DATABASE_SECRET_ARN") || env.contains_key("DATABASE_URL");
        if !reads_db {
            continue;
        }
        let reserved = &f["Properties"]["ReservedConcurrentExecutions"];
        let n = match (target(reserved), reserved.as_u64()) {
            (Some(param), _) => t
                .parameter_default(&param)
                .unwrap_or_else(|| panic!("{name}: parameter {param} needs a numeric default")),
            (None, Some(n)) => n,
            _ => panic!(
                "{name} reads PostgreSQL without ReservedConcurrentExecutions: its connections \
                 would be bounded only by the account's concurrency"
            ),
        };
        total += n * POOL_PER_ENVIRONMENT;
        // Through the proxy when there is one (migrations aside: they go direct).
        if name != "MigrateFunction" {
            let host = env
                .get("HUBBUB_DATABASE_HOST")
                .unwrap_or_else(|| panic!("{name}: HUBBUB_DATABASE_HOST (RDS Proxy's endpoint)"));
            let text = format!("{host:?}");
            assert!(
                text.contains("UseRdsProxy") && text.contains("DatabaseProxy"),
                "{name}: {text}"
            );
        }
    }
    assert!(
        total <= DEFAULT_CONNECTION_BUDGET,
        "{total} connections at the default reserved concurrency, over the budget of {DEFAULT_CONNECTION_BUDGET}"
    );

    // RDS Proxy, as an option, requiring TLS and logging in with the database secret.
    let proxies = t.of_type("AWS::RDS::DBProxy");
    assert_eq!(proxies.len(), 1, "an optional RDS Proxy");
    let (name, proxy) = proxies.into_iter().next().expect("proxy");
    assert_eq!(s(&proxy["Condition"]), Some("UseRdsProxy"), "{name}");
    assert_eq!(
        proxy["Properties"]["RequireTLS"].as_bool(),
        Some(true),
        "{name}"
    );
    let auth = list(&proxy["Properties"]["Auth"]);
    assert!(
        auth.iter()
            .any(|a| target(&a["SecretArn"]).as_deref() == Some("DatabaseSecretArn")),
        "{name} logs in with the database secret"
    );
    assert!(
        !t.t["Conditions"]["UseRdsProxy"].is_null(),
        "the UseRdsProxy condition"
    );
}

#[test]
fn template_gives_every_function_and_api_a_log_group_with_retention() {
    let t = Template::load();
    let groups = t.of_type("AWS::Logs::LogGroup");
    let retained = |id: &str| {
        groups
            .get(id)
            .is_some_and(|g| !g["Properties"]["RetentionInDays"].is_null())
    };
    let mut used = BTreeSet::new();
    for (name, f) in t.functions() {
        let group = target(&f["Properties"]["LoggingConfig"]["LogGroup"]).unwrap_or_else(|| {
            panic!(
                "{name} logs to /aws/lambda/..., a group the stack does not own: no retention, and it outlives `sam delete`"
            )
        });
        assert!(
            retained(&group),
            "{name}: {group} is a log group with RetentionInDays"
        );
        assert!(used.insert(group.clone()), "{group} is shared");
    }
    // Access logs of both APIs.
    let http = t.of_type("AWS::Serverless::HttpApi");
    assert_eq!(http.len(), 1);
    for (name, api) in http {
        let dest = target(&api["Properties"]["AccessLogSettings"]["DestinationArn"])
            .unwrap_or_else(|| panic!("{name} has no access logs"));
        assert!(retained(&dest), "{name}: {dest}");
    }
    for (name, stage) in t.of_type("AWS::ApiGatewayV2::Stage") {
        let dest = target(&stage["Properties"]["AccessLogSettings"]["DestinationArn"])
            .unwrap_or_else(|| panic!("{name} has no access logs"));
        assert!(retained(&dest), "{name}: {dest}");
    }
}

#[test]
fn template_alarms_on_errors_throttles_and_fanout_failures() {
    let t = Template::load();
    let alarms = t.of_type("AWS::CloudWatch::Alarm");
    let watched: BTreeSet<(String, String)> = alarms
        .values()
        .flat_map(|a| {
            let p = &a["Properties"];
            let metric = s(&p["MetricName"]).unwrap_or_default().to_owned();
            list(&p["Dimensions"])
                .into_iter()
                .filter_map(|d| target(&d["Value"]))
                .map(move |r| (metric.clone(), r))
                .collect::<Vec<_>>()
        })
        .collect();
    for name in t.functions().keys() {
        for metric in ["Errors", "Throttles"] {
            assert!(
                watched.contains(&(metric.to_owned(), name.clone())),
                "no alarm on {name}'s {metric}"
            );
        }
    }
    assert!(
        watched.contains(&(
            "ApproximateNumberOfMessagesVisible".to_owned(),
            "FanoutDeadLetterQueue".to_owned()
        )),
        "no alarm on the fan-out dead-letter queue's depth"
    );
    // Each alarm can notify the operator's topic.
    for (name, a) in alarms {
        assert!(
            format!("{:?}", a["Properties"]["AlarmActions"]).contains("AlarmTopicArn"),
            "{name} notifies nobody"
        );
    }
}
