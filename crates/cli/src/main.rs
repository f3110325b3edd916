//! `raftq`: the one binary for server, dev cluster, admin and client
//! commands. Command-line parsing lives only here; the libraries take plain
//! config structs.

mod bench_cmd;
mod client_cmds;
mod demo;
mod dev_cmd;
mod health_cmd;
mod metrics_http;
mod server_cmd;

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
        match cli.command {
            Cmd::Server(args) => {
                init_logging(cli.log_format);
                server_cmd::run(args).await
            }
            Cmd::Dev(args) => dev_cmd::run(args).await,
            Cmd::Demo => demo::run(cli.json),
            Cmd::Bench(args) => bench_cmd::run(args, cli.servers, cli.json).await,
            Cmd::Health(args) => health_cmd::run(args, cli.json).await,
            Cmd::Client(command) => client_cmds::run(command, cli.servers, cli.json).await,
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
