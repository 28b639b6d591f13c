//! One torture worker process; started by `torture_runner`, not by hand.

use std::process::ExitCode;

use verrou_torture::stores::connect;
use verrou_torture::worker::{WorkerConfig, run_worker};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = WorkerConfig::from_args(&args).and_then(|(case, url, config)| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let locks = connect(case, &url).await?;
            run_worker(&config, &locks, None).await
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("torture_worker: {e}");
            ExitCode::FAILURE
        }
    }
}
