//! A store URL (`LOCK_STORE_URL=redis://...`) read into a [`StoreConfig`].

use std::path::PathBuf;

use verrou_core::LockError;

use crate::config::{
    DynamoDbConfig, MysqlConfig, PostgresConfig, RedisConfig, SqliteConfig, StoreConfig, StoreUrl,
    invalid, redact,
};

/// The schemes fred reads, each a Redis (or Valkey) server, Cluster or
/// Sentinel; the URL goes to the driver as written.
const REDIS_SCHEMES: [&str; 12] = [
    "redis",
    "rediss",
    "redis-cluster",
    "rediss-cluster",
    "redis-sentinel",
    "rediss-sentinel",
    "redis+unix",
    "valkey",
    "valkeys",
    "valkey-cluster",
    "valkeys-cluster",
    "valkey-sentinel",
];

const KNOWN: &str = "memory:, redis://, rediss://, redis-cluster://, valkey://, postgres://, \
                     postgresql://, mysql://, mariadb://, sqlite://, sqlite::memory:, dynamodb://";

impl StoreConfig {
    /// Reads a store URL:
    ///
    /// | URL | store |
    /// |---|---|
    /// | `memory:` or `memory://` | in-memory |
    /// | `redis://[[user:]password@]host[:port][/db]` | Redis (also `rediss://`, `redis-cluster://host:port[?node=host:port...]`, `redis-sentinel://`, `valkey://`, `valkey-cluster://`: fred's syntax) |
    /// | `postgres://user:password@host:5432/db`, `postgresql://...` | PostgreSQL (tokio-postgres's syntax, query parameters included) |
    /// | `mysql://user:password@host:3306/db`, `mariadb://...` | MySQL or MariaDB (mysql_async's syntax) |
    /// | `sqlite://locks.db`, `sqlite:///var/lib/app/locks.db`, `sqlite:locks.db` | SQLite file, the path taken as written |
    /// | `sqlite::memory:` or `sqlite://:memory:` | SQLite, private in-memory database |
    /// | `dynamodb://us-east-1` | DynamoDB in that region |
    /// | `dynamodb://?endpoint=http://127.0.0.1:8000&region=us-east-1&table=locks` | DynamoDB at an endpoint (parameters `endpoint`, `region`, `table`, `ca_file`, `aws_config=true`; percent-encoded where needed) |
    ///
    /// Every other option keeps the store's default; set it on the result,
    /// or use a configuration file. The URL is checked only as far as this
    /// table goes: the driver reads the rest when the store is built.
    ///
    /// ```
    /// use verrou::StoreConfig;
    ///
    /// assert_eq!(StoreConfig::from_url("redis://127.0.0.1:6379")?.driver(), "redis");
    /// assert_eq!(StoreConfig::from_url("sqlite::memory:")?.driver(), "sqlite");
    /// let StoreConfig::DynamoDb(dynamodb) =
    ///     StoreConfig::from_url("dynamodb://?endpoint=http://127.0.0.1:8000&region=eu-west-1")?
    /// else { unreachable!() };
    /// assert_eq!(dynamodb.region.as_deref(), Some("eu-west-1"));
    /// assert!(StoreConfig::from_url("ftp://host").is_err());
    /// # Ok::<(), verrou::LockError>(())
    /// ```
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] with the reason when the URL has no
    /// scheme, an unknown one, or does not fit its form; the password is
    /// never part of the message.
    pub fn from_url(url: &str) -> Result<StoreConfig, LockError> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(invalid(format!(
                "`{}` is not a store URL: it has no scheme (expected one of {KNOWN})",
                redact(url)
            )));
        };
        let scheme = scheme.to_ascii_lowercase();
        let authority = || {
            rest.strip_prefix("//").ok_or_else(|| {
                invalid(format!(
                    "a {scheme} URL starts with `{scheme}://`, got `{}`",
                    redact(url)
                ))
            })
        };
        match scheme.as_str() {
            "memory" => match rest {
                "" | "//" => Ok(StoreConfig::memory()),
                _ => Err(invalid(format!(
                    "a memory store URL is `memory:` or `memory://`, with nothing after it; got `{}`",
                    redact(url)
                ))),
            },
            redis if REDIS_SCHEMES.contains(&redis) => {
                authority()?;
                Ok(StoreConfig::Redis(RedisConfig {
                    url: Some(StoreUrl::new(url)),
                    ..RedisConfig::default()
                }))
            }
            "postgres" | "postgresql" => {
                authority()?;
                Ok(StoreConfig::Postgres(PostgresConfig {
                    url: Some(StoreUrl::new(url)),
                    ..PostgresConfig::default()
                }))
            }
            "mysql" | "mariadb" => {
                // mysql_async reads `mysql://` only; MariaDB speaks the same
                // protocol.
                let rest = authority()?;
                Ok(StoreConfig::Mysql(MysqlConfig {
                    url: Some(StoreUrl::new(format!("mysql://{rest}"))),
                    ..MysqlConfig::default()
                }))
            }
            "sqlite" => sqlite(rest),
            "dynamodb" => dynamodb(authority()?),
            other => Err(invalid(format!(
                "unknown store URL scheme `{other}` (expected one of {KNOWN})"
            ))),
        }
    }
}

fn sqlite(rest: &str) -> Result<StoreConfig, LockError> {
    let location = rest.strip_prefix("//").unwrap_or(rest);
    if location == ":memory:" {
        return Ok(StoreConfig::Sqlite(SqliteConfig {
            in_memory: true,
            ..SqliteConfig::default()
        }));
    }
    if location.is_empty() {
        return Err(invalid(
            "a sqlite URL names a file (`sqlite://locks.db`, `sqlite:///abs/path.db`) or \
             `sqlite::memory:`; this one names nothing",
        ));
    }
    if location.contains('?') {
        // sqlx-style `?mode=rwc` would otherwise become part of the file
        // name, silently.
        return Err(invalid(
            "a sqlite URL takes no parameters; set the store's options in a configuration file",
        ));
    }
    Ok(StoreConfig::Sqlite(SqliteConfig {
        path: Some(PathBuf::from(location)),
        ..SqliteConfig::default()
    }))
}

fn dynamodb(rest: &str) -> Result<StoreConfig, LockError> {
    let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
    if host.contains('@') {
        return Err(invalid(
            "a dynamodb URL holds no credentials: set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or access_key_id and secret_access_key in a configuration file",
        ));
    }
    let region = host.strip_suffix('/').unwrap_or(host);
    if region.contains('/') {
        return Err(invalid(format!(
            "a dynamodb URL is `dynamodb://region` or `dynamodb://?endpoint=...&region=...&table=...`; \
             `{region}` is not a region"
        )));
    }
    let mut config = DynamoDbConfig {
        region: (!region.is_empty()).then(|| region.to_owned()),
        ..DynamoDbConfig::default()
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)?;
        if value.is_empty() {
            return Err(invalid(format!("dynamodb URL parameter `{name}` is empty")));
        }
        let slot = match name {
            "endpoint" => {
                set_once(&mut config.endpoint, name, StoreUrl::new(value))?;
                continue;
            }
            "ca_file" => {
                set_once(&mut config.ca_file, name, PathBuf::from(value))?;
                continue;
            }
            "aws_config" => {
                let on = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(invalid(format!(
                            "dynamodb URL parameter `aws_config` is `true` or `false`, got `{other}`"
                        )));
                    }
                };
                set_once(&mut config.aws_config, name, on)?;
                continue;
            }
            "region" => &mut config.region,
            "table" => &mut config.table_name,
            other => {
                return Err(invalid(format!(
                    "unknown dynamodb URL parameter `{other}` (expected endpoint, region, table, \
                     ca_file or aws_config)"
                )));
            }
        };
        set_once(slot, name, value)?;
    }
    Ok(StoreConfig::DynamoDb(config))
}

/// A parameter given twice (or a region both as host and parameter) is a
/// mistake whichever value was meant.
fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), LockError> {
    if slot.is_some() {
        return Err(invalid(format!("dynamodb URL gives `{name}` twice")));
    }
    *slot = Some(value);
    Ok(())
}

/// `%XX` escapes, as a URL's query needs for `&`, `=` or `%` in a value.
fn percent_decode(value: &str) -> Result<String, LockError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let escape = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| invalid("dynamodb URL has a `%` not followed by two hex digits"))?;
            out.push(escape);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("dynamodb URL parameter is not UTF-8 once decoded"))
}
