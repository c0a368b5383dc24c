#!/usr/bin/env bash
# Makes the passwords docker-compose.yml reads as Docker secrets, once: a
# random password per file under .secrets/ (git-ignored). It never prints
# them. To rotate one, see README, "Secrets".
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
mkdir -p .secrets
for name in mongo_password redis_password; do
	f=".secrets/$name"
	if [ ! -s "$f" ]; then
		# 32 hex characters: nothing a URI, a shell or a config file must escape.
		od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$f"
		echo "made $f"
	fi
	# The containers run as other users (the demo as distroless nonroot):
	# the file is readable, the directory is not listable by others.
	chmod 644 "$f"
done
