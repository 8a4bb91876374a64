#!/bin/sh
# Install Debian packages for the test suite without leaving boot services behind (`make debs`).
#
# usage: contrib/apt-install-quiet.sh PACKAGE...
#
# The suite starts its own nginx, Caddy and mosquitto on free ports; the packages' postinst scripts would
# also enable them as boot services and start them. Two steps keep the machine as it was:
#   1. a policy-rc.d that answers 101 ("not allowed") while apt runs: invoke-rc.d and deb-systemd-invoke
#      then start nothing, with or without systemd as PID 1 (a container, a chroot);
#   2. the symlinks that enable a service (/etc/systemd/system/*.wants/*, /etc/rc?.d/S*) are listed before
#      and after the install, and the new ones are undone: update-rc.d disable for SysV links (so an upgrade
#      does not bring them back), the new links removed, systemd told when it runs.
# Symlinks are compared rather than `systemctl is-enabled` asked, because systemctl may be missing (it is
# one of the packages installed here) or unusable without systemd as PID 1; a link is the same everywhere.
# An existing policy-rc.d (Docker images ship one) is left as it is.
#
# ROOT (a folder used as /) and APT_GET (the installer command) exist for the tests.
set -eu

ROOT=${ROOT:-}
APT_GET=${APT_GET:-apt-get}
POLICY="$ROOT/usr/sbin/policy-rc.d"

enabling_links() {
	for dir in "$ROOT"/etc/systemd/system "$ROOT"/etc/rc0.d "$ROOT"/etc/rc1.d "$ROOT"/etc/rc2.d \
		"$ROOT"/etc/rc3.d "$ROOT"/etc/rc4.d "$ROOT"/etc/rc5.d "$ROOT"/etc/rc6.d "$ROOT"/etc/rcS.d; do
		[ -d "$dir" ] || continue
		case "$dir" in
		*/etc/systemd/system) find "$dir" -path '*.wants/*' -type l ;;
		*) find "$dir" -maxdepth 1 -name 'S*' -type l ;;
		esac
	done | sort
}

before=$(mktemp)
after=$(mktemp)
own_policy=""
cleanup() {
	rm -f "$before" "$after"
	[ -z "$own_policy" ] || rm -f "$POLICY"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

enabling_links >"$before"
if [ ! -e "$POLICY" ]; then
	mkdir -p "$(dirname "$POLICY")"
	printf '#!/bin/sh\n# aniworldd make debs: start no service while packages install\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"
	own_policy=1
fi

status=0
# shellcheck disable=SC2086 # APT_GET may carry arguments
DEBIAN_FRONTEND=noninteractive $APT_GET install -y -qq --no-install-recommends "$@" || status=$?

enabling_links >"$after"
systemd_running=""
[ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemd_running=1
comm -13 "$before" "$after" | while IFS= read -r link; do
	name=$(basename "$link")
	case "$link" in
	*/etc/systemd/system/*)
		[ -z "$systemd_running" ] || systemctl stop "$name" >/dev/null 2>&1 || true
		;;
	*)
		service=$(printf '%s' "$name" | sed 's/^S[0-9]*//')
		if [ -z "$ROOT" ] && command -v update-rc.d >/dev/null 2>&1; then
			update-rc.d "$service" disable >/dev/null 2>&1 || true
		fi
		;;
	esac
	if [ -L "$link" ]; then rm -f "$link"; fi
	echo "not left enabled: $name (enabled by the package install)"
done
[ -z "$systemd_running" ] || systemctl daemon-reload >/dev/null 2>&1 || true
exit "$status"
