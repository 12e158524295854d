<?php
/*
 * Test stubs of the pfSense functions the shim calls. Every call is recorded:
 * in-process (PHPUnit) in $GLOBALS['__stub_calls']; in a child process (the
 * wrapper run as a program) also as one JSON line per call appended to the
 * file named by the environment variable AWSHA_STUB_LOG.
 */
function awsha_stub_record($function, array $args) {
	$GLOBALS['__stub_calls'][] = array('fn' => $function, 'args' => $args);
	$log = getenv('AWSHA_STUB_LOG');
	if (!defined('AWSHA_STUB_IN_PHPUNIT') && $log !== false && $log !== '') {
		file_put_contents($log, json_encode(array('fn' => $function, 'args' => $args, 'pid' => getmypid())) . "\n", FILE_APPEND | LOCK_EX);
	}
}
