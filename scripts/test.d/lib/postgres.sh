# Sourced by scripts/test and scripts/bench: throwaway Postgres servers on loopback, a
# primary and, when asked, a streaming replica of it. Installs Postgres with apt-get when it
# is missing. Sets PG_BIN (one installed version, else the newest) and `as_pg` (Postgres
# refuses to run as root: as root, servers run as the postgres user the package created).
#
#   pg_setup DIR                          a folder for the servers' data and sockets
#   pg_start_primary DIR PORT [OPTION…]   initdb and start; OPTIONs are extra `-c k=v`
#   pg_start_replica DIR PRIMARY_PORT PORT [OPTION…]
#   pg_stop DIR                           stop both (immediately: they are throwaway)

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ ! -x "${PG_BIN:-$(pg_bin)}/initdb" ]; then
  echo "==> installing postgresql with apt-get" >&2
  pg_sudo=""
  [ "$(id -u)" = 0 ] || pg_sudo="sudo"
  $pg_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $pg_sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
PG_BIN=${PG_BIN:-$(pg_bin)}

if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

pg_setup() {
  mkdir -p "$1"
  [ "$(id -u)" != 0 ] || chown postgres "$1"
}

pg_start_primary() {
  local dir=$1 port=$2
  shift 2
  as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
  local opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400"
  opts+=" -c wal_level=replica -c max_wal_senders=4"
  for o in "$@"; do opts+=" -c $o"; done
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "$opts" start >/dev/null
  # A standby is a pg_basebackup of it over a replication connection.
  echo "host replication all 127.0.0.1/32 trust" | as_pg tee -a "$dir/data/pg_hba.conf" >/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" reload >/dev/null
}

# -R writes standby.signal and primary_conninfo: the copy streams from the primary.
# -C -S: through a replication slot, so the primary keeps every WAL segment until the
# standby has it. Without one, a standby that fell behind on a busy 2-core run asked for
# a segment the primary had already recycled and never caught up again (every CREATE
# DATABASE of the test suite writes its template into the WAL).
pg_start_replica() {
  local dir=$1 primary_port=$2 port=$3
  shift 3
  as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/replica" -R -X stream -c fast -C -S standby
  local opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c hot_standby=on"
  for o in "$@"; do opts+=" -c $o"; done
  as_pg "$PG_BIN/pg_ctl" -D "$dir/replica" -l "$dir/replica.log" -w -o "$opts" start >/dev/null
}

pg_stop() {
  as_pg "$PG_BIN/pg_ctl" -D "$1/replica" -m immediate stop >/dev/null 2>&1 || true
  as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m immediate stop >/dev/null 2>&1 || true
}
