//! `raftq`: the one binary for server, dev cluster, admin and client
//! commands. Command-line parsing lives only here; the libraries take plain
//! config structs.

mod auth_cmd;
mod bench_cmd;
mod client_cmds;
mod console;
mod demo;
mod dev_cmd;
mod health_cmd;
mod metrics_http;
mod reload;
mod server_cmd;
mod tls;
mod tls_cmd;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the server allocates and frees a
/// message body, an entry and a protobuf frame per request on many
/// threads, and glibc's allocator showed as ~20 % of the leader's CPU in a
/// publish benchmark (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "raftq", version, about = "A replicated, Raft-backed message queue")]
struct Cli {
    /// Servers to talk to (client commands): `host:port,host:port`.
    #[arg(
        long,
        global = true,
        env = "RAFTQ_SERVERS",
        value_delimiter = ',',
        default_value = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
    )]
    servers: Vec<String>,
    /// Bearer token sent with every call (client commands, bench), for a
    /// cluster with auth on. Prefer the environment variable: a flag shows
    /// in `ps`.
    #[arg(long, global = true, env = "RAFTQ_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the bearer token from this file's first line instead.
    #[arg(long, global = true, env = "RAFTQ_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    /// TLS: the CA certificate (PEM) the servers' certificates chain to.
    /// Client commands use it to check the servers; a server uses it to
    /// check its peers when it dials them.
    #[arg(long, global = true, env = "RAFTQ_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    /// TLS: a certificate chain (PEM). A server serves it and presents it
    /// to its peers; a client presents it to servers that ask for one.
    #[arg(long, global = true, env = "RAFTQ_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// TLS: the private key (PEM) of `--tls-cert`.
    #[arg(long, global = true, env = "RAFTQ_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    /// Machine-readable output (JSON) instead of prose.
    #[arg(long, global = true)]
    json: bool,
    /// Log format on stderr.
    #[arg(long, global = true, env = "RAFTQ_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    /// One JSON object per line, for log pipelines (ELK).
    Json,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one raftq node.
    Server(server_cmd::ServerArgs),
    /// Run a local cluster of raftq nodes on loopback.
    Dev(dev_cmd::DevArgs),
    /// Walk the queue state machine through a short story, in process.
    Demo,
    /// Load a running cluster and report throughput and latency.
    Bench(bench_cmd::BenchArgs),
    /// Ask one node's gRPC health service; exit 0 only if SERVING (the
    /// container health check).
    Health(health_cmd::HealthArgs),
    /// Tokens and the auth file: make a token, hash one, check a file, show
    /// what a principal may do.
    #[command(subcommand)]
    Auth(auth_cmd::AuthCommand),
    /// Certificates: a private CA and node and client certificates, made
    /// locally (development, compose).
    #[command(subcommand)]
    Tls(tls_cmd::TlsCommand),
    #[command(flatten)]
    Client(client_cmds::ClientCommand),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAFTQ_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The first line of a token file, trimmed.
fn read_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim();
    anyhow::ensure!(!token.is_empty(), "{}: no token on its first line", path.display());
    Ok(token.to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let tls_files =
            tls::ClientTlsFiles { ca: cli.tls_ca.clone(), cert: cli.tls_cert.clone(), key: cli.tls_key.clone() };
        let token = match (&cli.token_file, &cli.command) {
            // The server has its own flags; a token file meant for client
            // commands in the same environment is not its business.
            (_, Cmd::Server(_) | Cmd::Dev(_) | Cmd::Auth(_) | Cmd::Tls(_) | Cmd::Demo | Cmd::Health(_)) | (None, _) => {
                cli.token
            }
            (Some(path), _) => match read_token_file(path) {
                Ok(token) => Some(token),
                Err(e) => return Err(e),
            },
        };
        let base = raftq_client::ClientConfig {
            token: token.filter(|t| !t.is_empty()).map(raftq_client::BearerToken::new),
            tls: match &cli.command {
                // The server reads the files itself (and reloads them).
                Cmd::Server(_) | Cmd::Dev(_) | Cmd::Auth(_) | Cmd::Tls(_) | Cmd::Demo => None,
                _ => tls_files.load()?,
            },
            ..raftq_client::ClientConfig::default()
        };
        match cli.command {
            Cmd::Server(args) => {
                init_logging(cli.log_format);
                server_cmd::run(args, tls_files).await
            }
            Cmd::Dev(args) => dev_cmd::run(args).await,
            Cmd::Demo => demo::run(cli.json),
            Cmd::Bench(args) => bench_cmd::run(args, cli.servers, base, cli.json).await,
            Cmd::Auth(command) => auth_cmd::run(command, cli.json),
            Cmd::Tls(command) => tls_cmd::run(command),
            Cmd::Health(args) => health_cmd::run(args, base.tls, cli.json).await,
            Cmd::Client(command) => client_cmds::run(command, cli.servers, base, cli.json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
