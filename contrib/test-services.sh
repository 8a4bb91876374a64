#!/bin/sh
# The servers the cluster tests use (`make services`, run by `make test`): PostgreSQL on 127.0.0.1:5432 that
# lets user postgres in without a password, and a redis-server on 127.0.0.1:6379.
#
# usage: contrib/test-services.sh
#
# What already answers is left alone, so on a prepared machine this is two quick checks and nothing else.
# As root it starts what is installed but not running (contrib/apt-install-quiet.sh installs the packages
# without starting their services) and, on a fresh PostgreSQL, adds one pg_hba line: trust for user postgres
# from 127.0.0.1 (a test machine's database; the tests create and drop their own databases as postgres).
# Not root: it only says what is missing; the tests that need it skip.
#
# PG_PORT, PG_CLUSTER (the name of a cluster it creates) and REDIS_PORT exist for trying it out elsewhere.
set -eu

PG_PORT=${PG_PORT:-5432}
PG_CLUSTER=${PG_CLUSTER:-main}
REDIS_PORT=${REDIS_PORT:-6379}

pg_answers() {
	command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
}

pg_trusts_postgres() {
	psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1
}

redis_answers() {
	command -v redis-cli >/dev/null 2>&1 &&
		[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

# wait_for CHECK SECONDS: poll a check until it passes (servers take a moment to accept connections).
wait_for() {
	tries=$(($2 * 5))
	while [ "$tries" -gt 0 ]; do
		if "$1"; then return 0; fi
		sleep 0.2
		tries=$((tries - 1))
	done
	return 1
}

# psql as the database's superuser over the local socket (Debian's pg_hba lets user postgres in by peer).
as_postgres() {
	runuser -u postgres -- psql -p "$PG_PORT" -Atc "$1"
}

start_postgres() {
	command -v pg_lsclusters >/dev/null 2>&1 || {
		echo "services: PostgreSQL is not installed (Debian package postgresql)"
		return 1
	}
	# The cluster on our port: Debian's package creates "main" at install, the quiet install does not start it.
	cluster=$(pg_lsclusters -h | awk -v port="$PG_PORT" '$3 == port { print $1 " " $2; exit }')
	if [ -z "$cluster" ]; then
		version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)
		echo "services: creating PostgreSQL cluster $version/$PG_CLUSTER on port $PG_PORT"
		pg_createcluster -p "$PG_PORT" "$version" "$PG_CLUSTER" >/dev/null || return 1
		cluster="$version $PG_CLUSTER"
	fi
	echo "services: starting PostgreSQL $cluster"
	# shellcheck disable=SC2086 # "VERSION NAME": two arguments
	pg_ctlcluster $cluster start || return 1
	wait_for pg_answers 30
}

trust_postgres() {
	hba=$(as_postgres 'show hba_file') || return 1
	echo "services: $hba: trust for user postgres from 127.0.0.1"
	# pg_hba.conf takes the first matching line: ours goes on top (the file keeps its owner and mode).
	old=$(cat "$hba") || return 1
	printf '# aniworldd make services (a test machine): user postgres from 127.0.0.1 without a password\nhost all postgres 127.0.0.1/32 trust\n%s\n' \
		"$old" >"$hba" || return 1
	as_postgres 'select pg_reload_conf()' >/dev/null || return 1
	wait_for pg_trusts_postgres 10
}

start_redis() {
	command -v redis-server >/dev/null 2>&1 || {
		echo "services: redis-server is not installed (Debian package redis-server)"
		return 1
	}
	echo "services: starting redis-server on 127.0.0.1:$REDIS_PORT"
	# Nothing kept on disk: the tests' data is throwaway.
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no --dir /tmp \
		--logfile /tmp/aniworldd-test-redis.log >/dev/null || return 1
	wait_for redis_answers 10
}

status=0
if [ "$(id -u)" != 0 ]; then
	pg_answers || echo "services: no PostgreSQL on 127.0.0.1:$PG_PORT (run make test as root to start one): its tests skip"
	redis_answers || echo "services: no redis-server on 127.0.0.1:$REDIS_PORT (run make test as root to start one): its tests skip"
	exit 0
fi
if ! pg_answers; then start_postgres || status=1; fi
if pg_answers && ! pg_trusts_postgres; then trust_postgres || status=1; fi
if ! redis_answers; then start_redis || status=1; fi
[ "$status" = 0 ] || echo "services: not all of PostgreSQL / redis-server could be started: their tests skip"
exit 0
