//! The fenced resource: a small bank (a few accounts) in a file per key,
//! guarded by `flock`, that refuses any access carrying a fencing token lower
//! than the highest it has seen.
//!
//! Reads are fenced too, not only writes: a holder whose lease ran out could
//! otherwise write *between* the newer holder's read and write and the newer
//! holder would overwrite it (a lost update). Remembering the token of every
//! access makes each holder's read-modify-write atomic with respect to older
//! holders, which is what Kleppmann's fencing asks of the storage.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Accounts per key; money moves between them under the lock.
pub const ACCOUNTS: usize = 4;
/// Starting balance of each account.
pub const START_BALANCE: i64 = 1_000;
/// Every record is written as exactly this many bytes in one `write` call, so
/// a worker killed mid-write cannot leave a torn or shortened file.
const RECORD_BYTES: usize = 256;

/// The content of one key's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The highest fencing token any access has presented.
    pub last_token: u64,
    /// Accesses applied so far (reads and writes); orders them.
    pub seq: u64,
    /// Writes applied so far.
    pub writes: u64,
    /// The balances.
    pub accounts: [i64; ACCOUNTS],
}

impl Record {
    fn fresh() -> Self {
        Record {
            last_token: 0,
            seq: 0,
            writes: 0,
            accounts: [START_BALANCE; ACCOUNTS],
        }
    }
}

/// What an access returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; the resource's sequence number after it and the balances.
    Accepted {
        /// Sequence number after this access.
        seq: u64,
        /// Balances after this access.
        accounts: [i64; ACCOUNTS],
    },
    /// Refused because a newer token was seen.
    Rejected,
}

/// The files of one torture run.
#[derive(Debug, Clone)]
pub struct FencedResource {
    dir: PathBuf,
}

impl FencedResource {
    /// The resource in `dir` (one file per key, created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FencedResource { dir: dir.into() }
    }

    /// Creates a fresh file for every key.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn reset(&self, keys: &[String]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        for key in keys {
            let mut file = File::create(self.path(key))?;
            file.write_all(&encode(&Record::fresh()))?;
        }
        Ok(())
    }

    /// The current record of `key`.
    ///
    /// # Errors
    /// On I/O failure or a corrupt file.
    pub fn load(&self, key: &str) -> std::io::Result<Record> {
        let mut file = File::open(self.path(key))?;
        file.lock()?;
        read_record(&mut file)
    }

    /// A fenced read.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn read(&self, key: &str, token: u64) -> std::io::Result<Outcome> {
        self.access(key, token, |_| {})
    }

    /// A fenced write of new balances.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn write(
        &self,
        key: &str,
        token: u64,
        accounts: [i64; ACCOUNTS],
    ) -> std::io::Result<Outcome> {
        self.access(key, token, |record| {
            record.accounts = accounts;
            record.writes += 1;
        })
    }

    fn access(
        &self,
        key: &str,
        token: u64,
        apply: impl FnOnce(&mut Record),
    ) -> std::io::Result<Outcome> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(key))?;
        // flock: released when the file is closed, also when the process dies.
        file.lock()?;
        let mut record = read_record(&mut file)?;
        if token < record.last_token {
            return Ok(Outcome::Rejected);
        }
        record.last_token = token;
        record.seq += 1;
        apply(&mut record);
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&encode(&record))?;
        Ok(Outcome::Accepted {
            seq: record.seq,
            accounts: record.accounts,
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn read_record(file: &mut File) -> std::io::Result<Record> {
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    serde_json::from_str(text.trim_end()).map_err(std::io::Error::other)
}

fn encode(record: &Record) -> Vec<u8> {
    // Serializing integers cannot fail; pad with spaces (valid JSON whitespace)
    // to the fixed size.
    let mut bytes = serde_json::to_vec(record).unwrap_or_default();
    bytes.resize(RECORD_BYTES.max(bytes.len()), b' ');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_token_is_refused_after_a_higher_one() {
        let dir = std::env::temp_dir().join(format!("verrou-res-{}", std::process::id()));
        let res = FencedResource::new(&dir);
        res.reset(&["k".into()]).unwrap();
        assert!(matches!(
            res.read("k", 5).unwrap(),
            Outcome::Accepted { .. }
        ));
        assert_eq!(res.write("k", 4, [0; ACCOUNTS]).unwrap(), Outcome::Rejected);
        assert!(matches!(
            res.write("k", 5, [1; ACCOUNTS]).unwrap(),
            Outcome::Accepted { seq: 2, .. }
        ));
        let record = res.load("k").unwrap();
        assert_eq!((record.writes, record.accounts), (1, [1; ACCOUNTS]));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
