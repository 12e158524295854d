<?php
/*
 * Test stubs of the pfSense functions the shim calls. Every call is recorded:
 * in-process (PHPUnit) in $GLOBALS['__stub_calls']; in a child process (the
 * wrapper run as a program) also as one JSON line per call appended to the
 * file named by the environment variable AWSHA_STUB_LOG.
 *
 * Profiles. The stubs model the pfSense releases that differ for a package
 * (docs/references.md §13); the profile is the
 * environment variable AWSHA_STUB_PROFILE, or $GLOBALS['__stub_profile'] for
 * what can change inside one process:
 *   2.7.2    CE 2.7.2: pfsense/pfsense RELENG_2_7_2 (ec956d343e, 2024-12-06).
 *            No logger(); log_error() is syslog(LOG_ERR, "<page>: …") under
 *            PHP's ident; no package XMLRPC hooks in rc.filter_synchronize or
 *            xmlrpc.php.
 *   2.8      CE 2.8.x: master at a3671d9bb6 ("Bump to 2.9.0-DEVELOPMENT",
 *            2025-04-02), where RELENG_2_8 branched. No logger(); the hooks of
 *            9974d8f7fa, with xmlrpc.php's loop over the packages' merged
 *            paths overwriting $sections (fixed only by 7a9b526322,
 *            2025-05-27, after the branch point; reported still present in
 *            2.8.1).
 *   current  master 9363ac5b86 (2026-03-31) ≈ current Plus: logger() since
 *            97c0e52ad9, log_error() wraps logger(LOG_ERR, …); hooks fixed.
 * logger() is defined or not when util.inc is first included, so for it the
 * environment variable decides (child processes); the models in _pfsense.php
 * read the profile on every call.
 */
const AWSHA_STUB_PROFILES = array(
	'2.7.2' => array('logger' => false, 'xmlrpc_hooks' => false, 'recv_sections_bug' => false),
	'2.8' => array('logger' => false, 'xmlrpc_hooks' => true, 'recv_sections_bug' => true),
	'current' => array('logger' => true, 'xmlrpc_hooks' => true, 'recv_sections_bug' => false),
);

function awsha_stub_profile() {
	$profile = $GLOBALS['__stub_profile'] ?? getenv('AWSHA_STUB_PROFILE');
	if ($profile === false || $profile === null || $profile === '') {
		$profile = 'current';
	}
	if (!isset(AWSHA_STUB_PROFILES[$profile])) {
		throw new RuntimeException("unknown stub profile {$profile}");
	}
	return $profile;
}

function awsha_stub_has($feature) {
	return AWSHA_STUB_PROFILES[awsha_stub_profile()][$feature];
}

function awsha_stub_record($function, array $args) {
	/* node: null on the node under test, 'peer' inside the XMLRPC peer's model (_pfsense.php). */
	$GLOBALS['__stub_calls'][] = array('fn' => $function, 'args' => $args, 'node' => $GLOBALS['__stub_node'] ?? null);
	$log = getenv('AWSHA_STUB_LOG');
	if (!defined('AWSHA_STUB_IN_PHPUNIT') && $log !== false && $log !== '') {
		file_put_contents($log, json_encode(array('fn' => $function, 'args' => $args, 'pid' => getmypid())) . "\n", FILE_APPEND | LOCK_EX);
	}
}

/*
 * pfSense's varrun_path is /var/run; the tests move it with AWSHA_RUN_DIR
 * (the binary's run directory), so a path under /var/run in a package's
 * XML (the service's status command) lands in the test's directory.
 */
function awsha_stub_path($path) {
	$run = getenv('AWSHA_RUN_DIR');
	if ($run !== false && $run !== '' && strncmp($path, '/var/run/', 9) === 0) {
		return rtrim($run, '/') . '/' . substr($path, 9);
	}
	return $path;
}

/*
 * PHP's own syslog functions, captured. The tests run PHP with
 * disable_functions=openlog,syslog,closelog (bootstrap.php), which lets these
 * take their place (PHP >= 8.0). They keep what the C library keeps: the
 * ident of the last openlog() until closelog(); without one, syslog(3) uses
 * the program name, which for pfSense's PHP is "php" (docs/references.md §13).
 */
if (!function_exists('syslog')) {
	function openlog(string $prefix, int $flags, int $facility): bool {
		$GLOBALS['__stub_syslog_ident'] = array($prefix, $flags, $facility);
		awsha_stub_record('openlog', array($prefix, $flags, $facility));
		return true;
	}

	function closelog(): bool {
		unset($GLOBALS['__stub_syslog_ident']);
		awsha_stub_record('closelog', array());
		return true;
	}

	function syslog(int $priority, string $message): bool {
		[$ident, , $facility] = $GLOBALS['__stub_syslog_ident'] ?? array('php', 0, LOG_USER);
		awsha_stub_record('syslog', array($ident, $priority, $message, $facility));
		return true;
	}
}
