//! Structural checks of what `deploy/` ships: the compose file and the
//! Kubernetes manifests parse, and carry what PRODUCT.md §5 and the README
//! promise (three nodes, a volume each, health checks, restart policy,
//! SIGTERM, loopback-only ports; StatefulSet, headless Service, PDB,
//! probes, resources), and their addresses agree with each other.

use std::collections::BTreeSet;
use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every document of `deploy/<path>`, with `<<` merge keys resolved.
fn load(path: &str) -> Vec<Yaml> {
    let full = deploy_dir().join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    docs.iter().map(merged).collect()
}

/// Resolves YAML merge keys (`<<: *anchor`), which compose files use.
fn merged(node: &Yaml) -> Yaml {
    match node {
        Yaml::Hash(hash) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            if let Some(Yaml::Hash(base)) = hash.get(&Yaml::String("<<".into())).map(merged) {
                out.extend(base);
            }
            for (k, v) in hash {
                if k.as_str() != Some("<<") {
                    out.insert(k.clone(), merged(v));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(items) => Yaml::Array(items.iter().map(merged).collect()),
        other => other.clone(),
    }
}

/// `text` as compose reads it with no variable set: each `${NAME:-default}`
/// replaced by its default.
fn defaults(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|e| start + e).unwrap_or_else(|| panic!("unclosed ${{ in {text}"));
        let inner = &rest[start + 2..end];
        let (_, default) = inner.split_once(":-").unwrap_or_else(|| panic!("{inner} has no default"));
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out + rest
}

fn str_of<'a>(node: &'a Yaml, what: &str) -> &'a str {
    node.as_str().unwrap_or_else(|| panic!("{what}: expected a string, got {node:?}"))
}

fn list<'a>(node: &'a Yaml, what: &str) -> &'a Vec<Yaml> {
    node.as_vec().unwrap_or_else(|| panic!("{what}: expected a list, got {node:?}"))
}

/// The value of env var `name` in a k8s container's `env` list.
fn k8s_env<'a>(container: &'a Yaml, name: &str) -> &'a str {
    let entry = list(&container["env"], "env").iter().find(|e| e["name"].as_str() == Some(name));
    str_of(&entry.unwrap_or_else(|| panic!("env {name} missing"))["value"], name)
}

#[test]
fn compose_file_runs_three_healthy_nodes() {
    let doc = &load("docker-compose.yml")[0];
    let services = doc["services"].as_hash().expect("services");
    let nodes: Vec<&Yaml> =
        services.iter().filter(|(name, _)| str_of(name, "name").starts_with("raftq-")).map(|(_, s)| s).collect();
    assert_eq!(nodes.len(), 3, "three raftq nodes");
    let mut ids = BTreeSet::new();
    let mut volumes = BTreeSet::new();
    for node in &nodes {
        let env = &node["environment"];
        let id = str_of(&env["RAFTQ_NODE_ID"], "RAFTQ_NODE_ID");
        ids.insert(id.to_owned());
        let listen = defaults(str_of(&env["RAFTQ_LISTEN"], "RAFTQ_LISTEN"));
        let listen_port = listen.rsplit_once(':').unwrap().1;
        let peer_listen = defaults(str_of(&env["RAFTQ_PEER_LISTEN"], "RAFTQ_PEER_LISTEN"));
        let peer_port = peer_listen.rsplit_once(':').unwrap().1;
        // The nodes know each other by hostname (the service name); the
        // container is named after the project, `raftq` by default.
        let name = str_of(&node["hostname"], "hostname");
        assert_eq!(defaults(str_of(&node["container_name"], "container_name")), name, "default project");
        let peers = defaults(str_of(&env["RAFTQ_PEERS"], "RAFTQ_PEERS"));
        assert!(
            peers.split(',').any(|p| p == format!("{id}={name}:{listen_port}/{name}:{peer_port}")),
            "{name} advertises itself in {peers}"
        );
        assert!(env["RAFTQ_DATA_DIR"].as_str().is_some() && env["RAFTQ_METRICS_LISTEN"].as_str().is_some());
        assert_eq!(node["image"].as_str().map(|i| i.contains("raftq:local")), Some(true), "the local image");
        assert_eq!(str_of(&node["restart"], "restart"), "unless-stopped");
        assert_eq!(str_of(&node["stop_signal"], "stop_signal"), "SIGTERM");
        let test = list(&node["healthcheck"]["test"], "healthcheck.test");
        let test: Vec<&str> = test.iter().map(|t| str_of(t, "test")).collect();
        assert_eq!(&test[..3], ["CMD", "/usr/local/bin/raftq", "health"], "the binary checks itself");
        let test: Vec<String> = test.iter().map(|t| defaults(t)).collect();
        assert!(test.contains(&format!("127.0.0.1:{listen_port}")), "{test:?}");
        let ports: Vec<String> = list(&node["ports"], "ports").iter().map(|p| defaults(str_of(p, "port"))).collect();
        for port in &ports {
            assert!(port.starts_with("127.0.0.1:"), "{port} is published on loopback only");
        }
        let published = format!("127.0.0.1:{listen_port}:{listen_port}");
        assert!(ports.contains(&published), "{published}");
        let peer_published = ports.iter().any(|p| p.ends_with(&format!(":{peer_port}")));
        assert!(!peer_published, "{name}: the peer port stays on the compose network");
        // Auth is on, from files in the secrets mount.
        let mounts: Vec<&str> = list(&node["volumes"], "volumes").iter().map(|v| str_of(v, "volume")).collect();
        let secrets = mounts.iter().find(|m| m.starts_with("./secrets:")).expect("the secrets mount");
        let secrets_dir = secrets.split(':').nth(1).unwrap();
        for var in [
            "RAFTQ_AUTH_FILE",
            "RAFTQ_PEER_TOKEN_FILE",
            "RAFTQ_TOKEN_FILE",
            "RAFTQ_TLS_CA",
            "RAFTQ_TLS_CLIENT_CA",
            "RAFTQ_TLS_CERT",
            "RAFTQ_TLS_KEY",
        ] {
            let path = str_of(&env[var], var);
            assert!(path.starts_with(&format!("{secrets_dir}/")), "{name}: {var}={path} is in the secrets mount");
        }
        let cert = str_of(&env["RAFTQ_TLS_CERT"], "RAFTQ_TLS_CERT");
        assert!(cert.ends_with(&format!("/{name}.pem")), "{name} serves its own certificate, not {cert}");
        let volume = str_of(&list(&node["volumes"], "volumes")[0], "volume");
        assert!(volume.ends_with(":/var/lib/raftq"), "{volume}");
        volumes.insert(volume.split(':').next().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 3, "distinct node ids");
    assert_eq!(volumes.len(), 3, "one volume each");
    for volume in &volumes {
        assert!(!doc["volumes"][volume.as_str()].is_badvalue(), "named volume {volume} declared");
    }
    for optional in ["prometheus", "grafana"] {
        let profiles = list(&doc["services"][optional]["profiles"], "profiles");
        assert_eq!(profiles, &vec![Yaml::String("observability".into())], "{optional} only in its profile");
    }
}

#[test]
fn kubernetes_manifests_have_what_a_statefulset_needs() {
    let kustomization = &load("k8s/kustomization.yaml")[0];
    let mut objects = Vec::new();
    for file in list(&kustomization["resources"], "resources") {
        objects.extend(load(&format!("k8s/{}", str_of(file, "resource"))));
    }
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{kind} {name} missing"))
    };
    let sts = find("StatefulSet", "raftq");
    let spec = &sts["spec"];
    let replicas = spec["replicas"].as_i64().expect("replicas");
    assert_eq!(replicas, 3);
    assert_eq!(str_of(&spec["podManagementPolicy"], "podManagementPolicy"), "Parallel");
    let pod_labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(&spec["selector"]["matchLabels"], pod_labels, "the selector picks the pods");

    let headless_name = str_of(&spec["serviceName"], "serviceName");
    let headless = find("Service", headless_name);
    assert_eq!(headless["spec"]["clusterIP"].as_str(), Some("None"), "headless");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"].as_bool(), Some(true), "peers resolve before ready");
    assert_eq!(&headless["spec"]["selector"], pod_labels);
    assert_eq!(&find("Service", "raftq")["spec"]["selector"], pod_labels, "client Service");
    let pdb = find("PodDisruptionBudget", "raftq");
    assert_eq!(pdb["spec"]["maxUnavailable"].as_i64(), Some(1));
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], pod_labels);

    let claims = list(&spec["volumeClaimTemplates"], "volumeClaimTemplates");
    let claim = str_of(&claims[0]["metadata"]["name"], "claim name");
    assert!(claims[0]["spec"]["resources"]["requests"]["storage"].as_str().is_some());
    assert_eq!(spec["template"]["spec"]["securityContext"]["runAsNonRoot"].as_bool(), Some(true));

    let container = &list(&spec["template"]["spec"]["containers"], "containers")[0];
    let ports: BTreeSet<&str> =
        list(&container["ports"], "ports").iter().map(|p| str_of(&p["name"], "port name")).collect();
    for probe in ["readinessProbe", "livenessProbe"] {
        let port = str_of(&container[probe]["httpGet"]["port"], probe);
        assert!(ports.contains(port), "{probe} uses a declared port");
    }
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
    for resource in ["cpu", "memory"] {
        assert!(container["resources"]["requests"][resource].as_str().is_some(), "requests.{resource}");
    }
    let mount = list(&container["volumeMounts"], "volumeMounts").iter().find(|m| m["name"].as_str() == Some(claim));
    assert_eq!(mount.map(|m| str_of(&m["mountPath"], "mountPath")), Some(k8s_env(container, "RAFTQ_DATA_DIR")));

    // Pod raftq-N is node N+1, and every peer address is a pod's stable name.
    assert_eq!(k8s_env(container, "RAFTQ_NODE_ID_FROM_HOSTNAME"), "true");
    let grpc_port = k8s_env(container, "RAFTQ_LISTEN").rsplit_once(':').unwrap().1;
    let peer_port = k8s_env(container, "RAFTQ_PEER_LISTEN").rsplit_once(':').unwrap().1;
    assert_ne!(grpc_port, peer_port);
    let sts_name = str_of(&sts["metadata"]["name"], "name");
    let expected: Vec<String> = (0..replicas)
        .map(|n| {
            let host = format!("{sts_name}-{n}.{headless_name}");
            format!("{}={host}:{grpc_port}/{host}:{peer_port}", n + 1)
        })
        .collect();
    assert_eq!(k8s_env(container, "RAFTQ_PEERS"), expected.join(","));
    // The peer port resolves through the headless Service only; the client
    // Service does not expose it.
    let service_ports = |name: &str| -> BTreeSet<String> {
        list(&find("Service", name)["spec"]["ports"], "ports")
            .iter()
            .map(|p| str_of(&p["targetPort"], "targetPort").to_owned())
            .collect()
    };
    assert!(service_ports(headless_name).contains("peer"), "peers find each other");
    assert!(!service_ports("raftq").contains("peer"), "the client Service has no peer port");
    // Only raftq pods may reach the peer port.
    let policy = find("NetworkPolicy", "raftq-peers");
    assert_eq!(&policy["spec"]["podSelector"]["matchLabels"], pod_labels);
    let rules = list(&policy["spec"]["ingress"], "ingress");
    let peer_rule = rules
        .iter()
        .find(|r| list(&r["ports"], "ports").iter().any(|p| p["port"].as_str() == Some("peer")))
        .expect("a rule for the peer port");
    let from = list(&peer_rule["from"], "from");
    assert!(from.iter().all(|f| &f["podSelector"]["matchLabels"] == pod_labels), "peers only: {from:?}");
    assert!(
        rules.iter().all(|r| r["from"].is_badvalue() || std::ptr::eq(r, peer_rule)),
        "only the peer rule restricts sources"
    );
    let metrics_port = k8s_env(container, "RAFTQ_METRICS_LISTEN").rsplit_once(':').unwrap().1;
    let declared = |name: &str| {
        list(&container["ports"], "ports")
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
            .map(|p| p.to_string())
    };
    assert_eq!(declared("grpc").as_deref(), Some(grpc_port));
    assert_eq!(declared("peer").as_deref(), Some(peer_port));
    assert_eq!(declared("metrics").as_deref(), Some(metrics_port));

    // Auth is on, from the Secret raftq-auth mounted where the env points.
    let auth_mount = list(&container["volumeMounts"], "volumeMounts")
        .iter()
        .find(|m| m["name"].as_str() == Some("auth"))
        .map(|m| str_of(&m["mountPath"], "mountPath"))
        .expect("the auth secret is mounted");
    for var in ["RAFTQ_AUTH_FILE", "RAFTQ_PEER_TOKEN_FILE"] {
        assert!(k8s_env(container, var).starts_with(&format!("{auth_mount}/")), "{var} is in the secret");
    }
    let volumes = list(&spec["template"]["spec"]["volumes"], "volumes");
    let auth = volumes.iter().find(|v| v["name"].as_str() == Some("auth")).expect("auth volume");
    assert_eq!(auth["secret"]["secretName"].as_str(), Some("raftq-auth"));
    // And mutual TLS, from the Secret raftq-tls.
    let tls_mount = list(&container["volumeMounts"], "volumeMounts")
        .iter()
        .find(|m| m["name"].as_str() == Some("tls"))
        .map(|m| str_of(&m["mountPath"], "mountPath"))
        .expect("the tls secret is mounted");
    for var in ["RAFTQ_TLS_CERT", "RAFTQ_TLS_KEY", "RAFTQ_TLS_CA", "RAFTQ_TLS_CLIENT_CA"] {
        assert!(k8s_env(container, var).starts_with(&format!("{tls_mount}/")), "{var} is in the tls secret");
    }
    let tls = volumes.iter().find(|v| v["name"].as_str() == Some("tls")).expect("tls volume");
    assert_eq!(tls["secret"]["secretName"].as_str(), Some("raftq-tls"));
}
