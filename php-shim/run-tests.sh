#!/bin/sh
# Tests of the pfSense package (PHP shim): php -l on every PHP file, then PHPUnit.
# Usage: php-shim/run-tests.sh [phpunit arguments]   (from anywhere)
# Needs php-cli (>= 8.1) and phpunit 9.6; PHP and PHPUNIT override the programs.
set -eu

shim=$(cd "$(dirname "$0")" && pwd)
php=${PHP:-php}
phpunit=${PHPUNIT:-phpunit}

failed=0
count=0
# *.php and *.inc, plus extension-less PHP programs (awsha-run, the fake binary).
files=$(find "$shim" -type f \( -name '*.php' -o -name '*.inc' -o -perm -u+x \) ! -name '*.sh' | sort)
for f in $files; do
	case "$f" in
	*.php|*.inc) ;;
	*) head -n 1 "$f" | grep -q 'php' || continue ;;
	esac
	count=$((count + 1))
	if ! out=$("$php" -l "$f" 2>&1); then
		echo "$out" >&2
		failed=1
	fi
done
if [ "$failed" -ne 0 ]; then
	echo "php -l: syntax errors (above)" >&2
	exit 1
fi
echo "php -l: $count files OK"

cd "$shim/.."
exec "$phpunit" -c php-shim/tests/phpunit.xml "$@"
