#!/usr/bin/env bash
# Makes the test servers ready on loopback: Redis (6379), a three-node Redis Cluster (7000-7002),
# PostgreSQL (5432, trust auth, database "test") and MariaDB (3306, root without password, database
# "test"). It probes first and only installs, configures or starts what is missing, so it is harmless
# to run twice and works both on a bare Debian machine and on one where the services already run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
RUN="${RUN_DIR:-/tmp/sessionkit-services}"
mkdir -p "$RUN"
log() { printf '[services] %s\n' "$*"; }

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "$name did not come up"; return 1
}

# Redis on 6379.
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  log "starting redis on 6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --pidfile "$RUN/redis-6379.pid" --logfile "$RUN/redis-6379.log"
  wait_for redis redis-cli -p 6379 ping
fi

# Redis Cluster on 7000-7002.
if ! redis-cli -p 7000 cluster info 2>/dev/null | grep -q cluster_state:ok; then
  log "starting redis cluster on 7000-7002"
  for p in 7000 7001 7002; do
    d="$RUN/redis-$p"
    redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$d"; mkdir -p "$d"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
      --cluster-config-file "$d/nodes.conf" --dir "$d" --save "" --appendonly no \
      --pidfile "$d/redis.pid" --logfile "$d/redis.log"
  done
  for p in 7000 7001 7002; do wait_for "redis $p" redis-cli -p "$p" ping; done
  redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 \
    --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 100); do
    redis-cli -p 7000 cluster info | grep -q cluster_state:ok && break; sleep 0.1
  done
fi

# PostgreSQL: trust on loopback, database "test".
if ! pg_isready -h 127.0.0.1 -q 2>/dev/null || ! psql -h 127.0.0.1 -U postgres -d test -tAc "select 1" >/dev/null 2>&1; then
  PGV=$(ls /etc/postgresql | sort -V | tail -1)
  log "preparing postgresql $PGV"
  sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)(scram-sha-256|md5|peer)/\1trust/' \
    "/etc/postgresql/$PGV/main/pg_hba.conf"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  if pg_ctlcluster --skip-systemctl-redirect "$PGV" main status >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$PGV" main reload
  else
    pg_ctlcluster --skip-systemctl-redirect "$PGV" main start
  fi
  wait_for postgresql pg_isready -h 127.0.0.1
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
    || su postgres -c "createdb test"
fi

# MariaDB: must not run as root.
if ! mariadb-admin -h 127.0.0.1 -uroot ping --silent >/dev/null 2>&1; then
  log "starting mariadb"
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  install -d -o mysql -g root -m 755 /run/mysqld
  start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid \
    --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1
  wait_for mariadb mariadb-admin ping --silent
fi
if ! mariadb -h 127.0.0.1 -uroot -e "select 1" >/dev/null 2>&1; then
  mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
fi
mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test"

log "ready: redis://127.0.0.1:6379, cluster 127.0.0.1:7000-7002, postgres://postgres@127.0.0.1:5432/test, mysql://root@127.0.0.1:3306/test"
