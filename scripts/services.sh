#!/usr/bin/env bash
# Makes sure MariaDB, Redis and RabbitMQ run on their default local ports: installs them from
# Debian when missing (root only), starts them when stopped. Safe to run again; changes nothing
# when all three already answer.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do port_open "$port" && return 0; sleep 1; done
  echo "services: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

APT_UPDATED=0
apt_install() {
  if [ "$(id -u)" != "0" ]; then
    echo "services: $* missing and not root; install them with apt-get" >&2
    return 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 3306; then
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
  echo "services: starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_port 3306 MariaDB
fi
# A fresh Debian MariaDB lets root in only through the socket; tests and `make run` use TCP.
if ! mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1; then
  mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;" 2>/dev/null \
    || echo "services: could not let root in over TCP; set SONORA_DATABASE_URL" >&2
fi

if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  echo "services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_port 6379 Redis
fi

if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  echo "services: starting RabbitMQ (takes a few seconds)"
  rabbitmq-server -detached
  wait_port 5672 RabbitMQ
fi
