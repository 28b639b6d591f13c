//! The servers Debian installs (PostgreSQL, MariaDB, Redis): started with the
//! machine's own commands when they are down.

use std::time::Duration;

use super::Service;
use crate::process::{sh, wait_for_port};

const WAIT: Duration = Duration::from_secs(60);

pub fn postgres() -> Service {
    Service {
        name: "postgres",
        port: 5432,
        start: || {
            sh("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")?;
            wait_for_port("postgres", 5432, WAIT)?;
            // The tests use database `test`; create it if this machine lacks it.
            sh(
                "psql -h 127.0.0.1 -U postgres -tc \"SELECT 1 FROM pg_database WHERE datname='test'\" | grep -q 1 \
                || psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE test' \
                || su postgres -c \"createdb test\"",
            )
        },
        stop: || sh("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main stop"),
        healthy: None,
    }
}

pub fn mariadb() -> Service {
    Service {
        name: "mariadb",
        port: 3306,
        start: || {
            sh(
                "mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null; \
                start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
            )?;
            wait_for_port("mariadb", 3306, WAIT)?;
            sh("mariadb -uroot -h127.0.0.1 -e 'CREATE DATABASE IF NOT EXISTS test'")
        },
        stop: || sh("mariadb-admin -uroot -h127.0.0.1 shutdown"),
        healthy: None,
    }
}

pub fn redis() -> Service {
    Service {
        name: "redis",
        port: 6379,
        start: || {
            sh(
                "mkdir -p /var/lib/redis /var/log/redis; redis-server --daemonize yes --bind 127.0.0.1 -::1 \
                --port 6379 --save '' --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
            )?;
            wait_for_port("redis", 6379, WAIT)
        },
        stop: || sh("redis-cli -p 6379 shutdown nosave"),
        healthy: None,
    }
}
