//! `command`: a program from the `[workflows.commands]` allowlist, run on the
//! Tocsin host. Off unless the operator lists commands. A step names an entry,
//! never a path; the entry fixes the program and the first arguments, and the
//! step's arguments follow, each passed as one argument (no shell reads
//! them). The environment is emptied (the server's secrets stay out of it)
//! but for `PATH` and the attempt's `TOCSIN_IDEMPOTENCY_KEY`. The program is
//! killed at its timeout; what it writes is kept up to a cap.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tocsin_core::workflow::Action;
use tocsin_notify::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::executor::{StepCall, StepError, StepExecutor};

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Absolute path of the program.
    pub program: PathBuf,
    /// Arguments always passed first.
    pub args: Vec<String>,
}

/// The `command` step.
pub struct CommandStep {
    commands: BTreeMap<String, CommandSpec>,
    max_output: usize,
    max_timeout: Duration,
}

impl CommandStep {
    /// Running `commands`, keeping `max_output` bytes of each stream, and
    /// never longer than `max_timeout` whatever a step asks.
    pub fn new(
        commands: BTreeMap<String, CommandSpec>,
        max_output: usize,
        max_timeout: Duration,
    ) -> CommandStep {
        CommandStep {
            commands,
            max_output,
            max_timeout,
        }
    }
}

// Reads a stream to its end, keeping the first `cap` bytes.
async fn capped(mut r: impl AsyncRead + Unpin, cap: usize) -> (String, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut cut = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
    (String::from_utf8_lossy(&kept).to_string(), cut)
}

impl StepExecutor for CommandStep {
    fn kinds(&self) -> &'static [&'static str] {
        &["command"]
    }

    fn uses_secret_values(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::Command(c) = call.action else {
                return Err(StepError::permanent("not a command step"));
            };
            let spec = self.commands.get(&c.name).ok_or_else(|| {
                StepError::permanent(format!(
                    "command.name: `{}` is not in the [workflows.commands] allowlist",
                    c.name
                ))
            })?;
            let timeout = Duration::from_secs(c.timeout.as_secs().max(1)).min(self.max_timeout);
            let mut child = tokio::process::Command::new(&spec.program)
                .args(&spec.args)
                .args(&c.args)
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("TOCSIN_IDEMPOTENCY_KEY", call.idempotency_key)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    StepError::permanent(format!("cannot start {}: {e}", spec.program.display()))
                })?;
            let out = tokio::spawn(capped(child.stdout.take().expect("piped"), self.max_output));
            let err = tokio::spawn(capped(child.stderr.take().expect("piped"), self.max_output));
            let status = match tokio::time::timeout(timeout, child.wait()).await {
                Ok(s) => s.map_err(|e| StepError::retryable(format!("waiting for it: {e}")))?,
                Err(_) => {
                    let _ = child.kill().await;
                    return Err(StepError::retryable(format!(
                        "{} ran longer than {}s and was killed",
                        c.name,
                        timeout.as_secs()
                    )));
                }
            };
            let (stdout, out_cut) = out.await.unwrap_or_default();
            let (stderr, err_cut) = err.await.unwrap_or_default();
            let code = status.code();
            if !status.success() {
                let excerpt: String = stderr.chars().take(500).collect();
                return Err(StepError::retryable(match code {
                    Some(n) => format!("{} exited with {n}: {excerpt}", c.name),
                    None => format!("{} was stopped by a signal: {excerpt}", c.name),
                }));
            }
            Ok(
                json!({ "exit_code": code, "stdout": stdout, "stderr": stderr,
                       "truncated": out_cut || err_cut }),
            )
        })
    }
}
