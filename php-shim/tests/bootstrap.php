<?php
/*
 * PHPUnit bootstrap for the awsha shim.
 *
 * - The pfSense includes (config.inc, util.inc, notices.inc,
 *   service-utils.inc, xmlrpc_client.inc) resolve to tests/stubs/ through
 *   include_path, as they resolve to /etc/inc on pfSense; awsha.inc resolves
 *   to the work tree's files/usr/local/pkg/.
 * - PHP's openlog/syslog/closelog are disabled (disable_functions) so that
 *   the stubs can capture them: what the shim sends to syslog, under which
 *   ident and level, is checked, and nothing reaches this machine's syslog.
 *   disable_functions cannot be set at run time, so a PHPUnit started
 *   without it re-runs itself once with it (same arguments, same
 *   environment, its exit code passed on).
 * - Child PHP processes (the wrapper awsha-run) get the same settings
 *   through an extra ini directory (PHP_INI_SCAN_DIR).
 * - AWSHA_BIN is the fake binary (tests/fixtures/fake-awsha); AWSHA_RUN and
 *   AWSHA_PHP are the work tree's wrapper and this PHP.
 * - The pfSense release modelled is AWSHA_STUB_PROFILE (2.7.2, 2.8 or
 *   current; default current): see stubs/_record.php.
 */
define('AWSHA_SHIM_ROOT', dirname(__DIR__));
define('AWSHA_PKG_DIR', AWSHA_SHIM_ROOT . '/files/usr/local/pkg');
define('AWSHA_STUB_DIR', __DIR__ . '/stubs');
define('AWSHA_FAKE_BIN', __DIR__ . '/fixtures/fake-awsha');
define('AWSHA_FAKE_MINICRON', __DIR__ . '/fixtures/fake-minicron');
define('AWSHA_WRAPPER', AWSHA_SHIM_ROOT . '/files/usr/local/sbin/awsha-run');
define('AWSHA_WWW_DIR', AWSHA_SHIM_ROOT . '/files/usr/local/www');
define('AWSHA_PAGE_RUNNER', __DIR__ . '/fixtures/run-page.php');

/* The stubs first; PHP's own path after them (PHPUnit's autoloader lives there). */
$include_path = implode(PATH_SEPARATOR, array('.', AWSHA_STUB_DIR, AWSHA_PKG_DIR, get_include_path()));
$ini_dir = sys_get_temp_dir() . '/awsha-shim-tests-ini-' . getmypid();
@mkdir($ini_dir, 0700, true);
file_put_contents("{$ini_dir}/awsha-tests.ini",
    'include_path = "' . $include_path . "\"\n" .
    "disable_functions = openlog,syslog,closelog\n");
putenv('PHP_INI_SCAN_DIR=' . PATH_SEPARATOR . $ini_dir);
register_shutdown_function(function () use ($ini_dir) {
	@unlink("{$ini_dir}/awsha-tests.ini");
	@rmdir($ini_dir);
});

if (function_exists('syslog') && (new ReflectionFunction('syslog'))->isInternal()) {
	$proc = proc_open(array_merge(array(PHP_BINARY), $_SERVER['argv']), array(0 => STDIN, 1 => STDOUT, 2 => STDERR), $pipes);
	exit(is_resource($proc) ? proc_close($proc) : 1);
}

define('AWSHA_STUB_IN_PHPUNIT', true);
foreach (array(AWSHA_FAKE_BIN, AWSHA_FAKE_MINICRON, AWSHA_WRAPPER) as $program) {
	if (!is_executable($program)) {
		chmod($program, 0755);
	}
}
set_include_path($include_path);

/*
 * In this process AWSHA_BIN is always the fake. A real binary given as
 * AWSHA_BIN is kept as AWSHA_TEST_REAL_BIN for the integration test, which
 * hands it to the wrapper it starts (a child process reads AWSHA_BIN anew).
 */
if (getenv('AWSHA_BIN') !== false && getenv('AWSHA_BIN') !== '' && getenv('AWSHA_TEST_REAL_BIN') === false) {
	putenv('AWSHA_TEST_REAL_BIN=' . getenv('AWSHA_BIN'));
}
putenv('AWSHA_BIN=' . AWSHA_FAKE_BIN);
putenv('AWSHA_RUN=' . AWSHA_WRAPPER);
putenv('AWSHA_PHP=' . PHP_BINARY);

$GLOBALS['__stub_calls'] = array();
require_once('config.inc');
require_once('util.inc');
require_once('notices.inc');
require_once('service-utils.inc');
require_once('xmlrpc_client.inc');
require_once(AWSHA_STUB_DIR . '/_pfsense.php');
require_once('awsha.inc');
require_once('awsha_status.inc');
require_once(__DIR__ . '/ShimTestCase.php');
