//! `load_aws_config` (feature `aws-config`): a store whose region and
//! credentials come from the AWS SDK's default chain, against the emulator.
//!
//! The chain reads the process environment and the home directory, which a
//! test must not change under other tests running in the same process. Each
//! case therefore runs [`chain_child`] in a child process (this test binary
//! again) with an environment of its own: no `AWS_*` variable of the
//! parent, a temporary `HOME`, the shared config and credentials files
//! pointed at temporary files, and the instance metadata service off (the
//! chain would otherwise wait for it off EC2). What is tested is what can
//! be without AWS: environment variables and profile files. SSO, web
//! identity, ECS and EC2 roles are the SDK's own providers, reached through
//! the same chain.

#![cfg(feature = "aws-config")]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_dynamodb::DynamoDbStore;
use verrou_dynamodb::aws_sdk_dynamodb::Client;
use verrou_dynamodb::aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use verrou_dynamodb::aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use verrou_testkit::Service;

/// Which case [`chain_child`] runs, when it runs as a child.
const CASE: &str = "VERROU_AWS_CHAIN_CASE";

/// A child's own home: the chain finds only what a case puts there.
struct Home {
    dir: PathBuf,
}

impl Home {
    fn new() -> Home {
        let dir = std::env::temp_dir().join(verrou_testkit::unique("verrou-aws-home"));
        std::fs::create_dir_all(&dir).unwrap();
        Home { dir }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// This binary running [`chain_child`] for `case`, in an environment
    /// cleared of the parent's AWS settings.
    fn child(&self, case: &str) -> Command {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args([
            "chain_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ]);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        let missing = self.dir.join("absent");
        command
            .env(CASE, case)
            .env("HOME", &self.dir)
            .env("AWS_CONFIG_FILE", &missing)
            .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the child and fails with its output unless it passed.
fn passes(mut child: Command) {
    let out = child.output().expect("the test binary runs again");
    assert!(
        out.status.success(),
        "child failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn credentials_and_region_from_environment_variables() {
    let home = Home::new();
    let mut child = home.child("environment");
    child
        .env("AWS_ACCESS_KEY_ID", "AKIDVERROUFROMENV")
        .env("AWS_SECRET_ACCESS_KEY", "verrou-env-secret")
        .env("AWS_REGION", "eu-west-3");
    passes(child);
}

#[test]
fn credentials_region_and_endpoint_from_a_profile() {
    let home = Home::new();
    let config = home.file(
        "config",
        &format!(
            "[profile verrou-test]\nregion = ap-southeast-2\nendpoint_url = {}\n",
            Service::DynamoDb.url()
        ),
    );
    let credentials = home.file(
        "credentials",
        "[verrou-test]\naws_access_key_id = AKIDVERROUPROFILE\n\
         aws_secret_access_key = verrou-profile-secret\n",
    );
    let mut child = home.child("profile");
    child
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
        .env("AWS_PROFILE", "verrou-test");
    passes(child);
}

#[test]
fn the_builder_s_settings_win_over_the_chain() {
    let home = Home::new();
    let mut child = home.child("builder-wins");
    child
        .env("AWS_ACCESS_KEY_ID", "AKIDVERROUFROMENV")
        .env("AWS_SECRET_ACCESS_KEY", "verrou-env-secret")
        .env("AWS_REGION", "eu-west-3");
    passes(child);
}

#[test]
fn no_credentials_anywhere_is_a_store_error_in_time() {
    let home = Home::new();
    let mut child = home.child("no-credentials");
    child.env("AWS_REGION", "eu-west-3");
    passes(child);
}

#[test]
fn no_region_anywhere_is_invalid_config() {
    let home = Home::new();
    let mut child = home.child("no-region");
    child
        .env("AWS_ACCESS_KEY_ID", "AKIDVERROUFROMENV")
        .env("AWS_SECRET_ACCESS_KEY", "verrou-env-secret");
    passes(child);
}

/// The child's side: does nothing unless run by one of the tests above.
#[tokio::test]
async fn chain_child() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let endpoint = Service::DynamoDb.url();
    let chain = || {
        DynamoDbStore::builder()
            .load_aws_config()
            .connect_timeout(Duration::from_secs(1))
            .operation_timeout(Some(Duration::from_secs(5)))
    };
    match case.as_str() {
        "environment" => {
            let built = chain().endpoint(&endpoint).build().await;
            let Some(store) = verrou_conformance::require_service("dynamodb", built) else {
                return;
            };
            check(&store, "AKIDVERROUFROMENV", "eu-west-3").await;
        }
        "profile" => {
            // No endpoint here: the profile's `endpoint_url` names the
            // emulator, or the build would go to AWS and fail.
            let built = chain().build().await;
            let Some(store) = verrou_conformance::require_service("dynamodb", built) else {
                return;
            };
            check(&store, "AKIDVERROUPROFILE", "ap-southeast-2").await;
        }
        "builder-wins" => {
            let built = chain()
                .endpoint(&endpoint)
                .region("us-west-1")
                .credentials("AKIDVERROUBUILDER", "verrou-builder-secret")
                .build()
                .await;
            let Some(store) = verrou_conformance::require_service("dynamodb", built) else {
                return;
            };
            check(&store, "AKIDVERROUBUILDER", "us-west-1").await;
        }
        "no-credentials" => {
            // The emulator must be there, or the failure below would be
            // about the connection, not the credentials.
            if verrou_conformance::require_service(
                "dynamodb",
                support::builder_for(&endpoint).build().await,
            )
            .is_none()
            {
                return;
            }
            let started = Instant::now();
            let built = chain().endpoint(&endpoint).build().await;
            match built {
                Err(error @ LockError::Store { .. }) => {
                    let chain = verrou_conformance::builders::error_chain(&error);
                    assert!(chain.contains("credentials"), "{chain}");
                }
                other => panic!("expected a Store error, got {other:?}"),
            }
            assert!(started.elapsed() < Duration::from_secs(15));
        }
        "no-region" => {
            let built = chain().endpoint(&endpoint).build().await;
            assert!(
                matches!(&built, Err(LockError::InvalidConfig { reason, .. }) if reason.contains("region")),
                "{built:?}"
            );
        }
        other => panic!("unknown case {other}"),
    }
}

/// The store signs with `key_id` in `region` (the `Authorization` header
/// of a request made with the store's client configuration says so), and
/// locks work.
async fn check(store: &DynamoDbStore, key_id: &str, region: &str) {
    let config = store.client().config();
    assert_eq!(config.region().map(|r| r.as_ref()), Some(region));
    let seen = Authorization::default();
    let client = Client::from_conf(config.to_builder().interceptor(seen.clone()).build());
    client.list_tables().send().await.unwrap();
    let header = seen.0.lock().unwrap().clone().expect("a signed request");
    assert!(
        header.contains(&format!("Credential={key_id}/"))
            && header.contains(&format!("/{region}/dynamodb/aws4_request")),
        "{header}"
    );
    let key = verrou_testkit::unique("aws-config");
    let ttl = Expiry::After(Duration::from_secs(30));
    assert!(matches!(
        store.acquire(&key, "a", ttl).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.release(&key, "a").await.unwrap();
}

/// Keeps the `Authorization` header of the last request sent.
#[derive(Debug, Default, Clone)]
struct Authorization(Arc<Mutex<Option<String>>>);

impl Intercept for Authorization {
    fn name(&self) -> &'static str {
        "verrou-test-authorization"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let header = context.request().headers().get("authorization");
        *self.0.lock().unwrap() = header.map(str::to_owned);
        Ok(())
    }
}
