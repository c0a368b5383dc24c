#!/usr/bin/env bash
# Makes the passwords docker-compose.yml reads as Docker secrets, once: a
# random password per file under .secrets/ (git-ignored). It never prints
# them. To rotate one, see docs/deployment.md, "Rotating a password".
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
# The key file the sharded deployment's MongoDB members authenticate each
# other with (docker-compose.sharded.yml; each copies it to a 0400 file of
# its own): 756 random bytes in base64, as MongoDB's documentation makes it.
f=.secrets/mongo_keyfile
if [ ! -s "$f" ]; then
	head -c 756 /dev/urandom | base64 | tr -d '\n' >"$f"
	echo "made $f"
fi
chmod 644 "$f"
