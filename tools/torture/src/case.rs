//! What one torture run puts under stress and how: a [`Target`] in a
//! [`Mode`], named on the command line as `redis`, `redis-renewal`,
//! `redis-volatile`...

use std::fmt;
use std::str::FromStr;

use verrou_testkit::StoreKind;

use crate::mode::Mode;

/// What a run tortures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A store of the workspace on its server: a private one the run may
    /// restart or fail over (the full run), or the shared one of `cargo
    /// xtask services` (the short run, which leaves shared servers alone).
    Store(StoreKind),
    /// Redis without persistence, killed and restarted: a demonstration that
    /// such a server loses locks and fencing counters. Violations are
    /// expected; asked for by name only.
    VolatileRedis,
    /// A store that grants every acquire: the harness's test of itself.
    Broken,
}

impl Target {
    /// The targets a run without arguments visits, in order.
    pub const ALL: [Target; 7] = [
        Target::Store(StoreKind::Memory),
        Target::Store(StoreKind::Sqlite),
        Target::Store(StoreKind::Postgres),
        Target::Store(StoreKind::Mysql),
        Target::Store(StoreKind::Redis),
        Target::Store(StoreKind::RedisCluster),
        Target::Store(StoreKind::DynamoDb),
    ];

    /// The name on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Target::Store(kind) => kind.name(),
            Target::VolatileRedis => "redis-volatile",
            Target::Broken => "broken",
        }
    }

    /// Whether the workers are threads sharing one store value rather than
    /// processes: the memory store (and the broken one) lives in one
    /// process.
    pub fn threads(self) -> bool {
        matches!(self, Target::Store(StoreKind::Memory) | Target::Broken)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let known = || {
            let mut names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
            names.extend([Target::VolatileRedis.name(), Target::Broken.name()]);
            names.join(", ")
        };
        match name {
            "redis-volatile" => Ok(Target::VolatileRedis),
            "broken" => Ok(Target::Broken),
            _ => match name.parse::<StoreKind>() {
                Ok(kind) if Target::ALL.contains(&Target::Store(kind)) => Ok(Target::Store(kind)),
                Ok(kind) => Err(format!(
                    "the torture does not run {kind} (known: {})",
                    known()
                )),
                Err(_) => Err(format!("unknown store `{name}` (known: {})", known())),
            },
        }
    }
}

/// One run: a target in a mode. Its name is the target's, with
/// [`Mode::SUFFIX`] for the renewal run (`redis-renewal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Case {
    /// What is tortured.
    pub target: Target,
    /// How its leases live.
    pub mode: Mode,
}

impl Case {
    /// `target`'s plain run.
    pub fn plain(target: Target) -> Self {
        Case {
            target,
            mode: Mode::Plain,
        }
    }

    /// `target`'s renewal run.
    pub fn renewal(target: Target) -> Self {
        Case {
            target,
            mode: Mode::Renewal,
        }
    }

    /// Whether leases renew themselves in this run.
    pub fn renewing(self) -> bool {
        self.mode == Mode::Renewal
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            Mode::Plain => write!(f, "{}", self.target),
            Mode::Renewal => write!(f, "{}{}", self.target, Mode::SUFFIX),
        }
    }
}

impl FromStr for Case {
    type Err = String;

    /// `redis` → Redis's plain run, `redis-renewal` → its renewal run.
    fn from_str(name: &str) -> Result<Self, String> {
        Ok(match name.strip_suffix(Mode::SUFFIX) {
            Some(target) => Case::renewal(target.parse()?),
            None => Case::plain(name.parse()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for target in Target::ALL
            .into_iter()
            .chain([Target::VolatileRedis, Target::Broken])
        {
            for case in [Case::plain(target), Case::renewal(target)] {
                assert_eq!(case.to_string().parse::<Case>(), Ok(case));
            }
        }
        assert_eq!(
            "redis-cluster-renewal".parse::<Case>(),
            Ok(Case::renewal(Target::Store(StoreKind::RedisCluster)))
        );
    }

    #[test]
    fn stores_it_does_not_run_are_refused_by_name() {
        let error = "valkey".parse::<Case>().unwrap_err();
        assert!(error.contains("does not run valkey"), "{error}");
        let error = "mongo-renewal".parse::<Case>().unwrap_err();
        assert!(error.contains("unknown store `mongo`"), "{error}");
        assert!(error.contains("redis-volatile"), "{error}");
    }
}
