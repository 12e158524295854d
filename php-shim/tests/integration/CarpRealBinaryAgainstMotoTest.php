<?php

/*
 * The whole chain with the real binary (docs/contracts.md §12): awsha_plugin_carp() on
 * rc.carpmaster -> awsha-run -> awsha --json failover 1@ena0 -> moto's EC2
 * behind the fault proxy, with the IMDSv2 emulator and the fake ifconfig.
 *
 * The servers and the two-node scenario are started by
 * tests/integration/test_shim_real_binary.py, which runs this test with the
 * node's environment (AWSHA_CONFIG, AWSHA_IFCONFIG, AWSHA_RUN_DIR, endpoints)
 * and AWSHA_TEST_SERVERS=1, then checks in EC2 that the resources moved.
 * In a plain `run-tests.sh` there are no servers, and it is skipped.
 */
final class CarpRealBinaryAgainstMotoTest extends ShimTestCase {
	public function testPluginCarpRunsTheRealBinaryAgainstMoto(): void {
		$real = getenv('AWSHA_TEST_REAL_BIN');
		if (getenv('AWSHA_TEST_SERVERS') !== '1' || $real === false || !is_executable($real)) {
			$this->markTestSkipped('needs the servers: run by tests/integration/test_shim_real_binary.py (make test)');
		}
		$interface = getenv('AWSHA_TEST_CARP_INTERFACE') ?: '1@ena0';
		$stubLog = "{$this->tmp}/stubs.log";
		putenv('AWSHA_BIN=' . $real);
		putenv("AWSHA_STUB_LOG={$stubLog}");
		$GLOBALS['__stub_exec_bg'] = true;
		try {
			awsha_plugin_carp(array('type' => 'carp', 'event' => 'rc.carpmaster', 'interface' => $interface));
		} finally {
			putenv('AWSHA_BIN=' . AWSHA_FAKE_BIN);
			putenv('AWSHA_STUB_LOG');
		}

		$diag = "rc={$GLOBALS['__stub_exec_bg_rc']}\nstdout={$GLOBALS['__stub_exec_bg_stdout']}\nstderr={$GLOBALS['__stub_exec_bg_stderr']}";
		$this->assertSame(0, $GLOBALS['__stub_exec_bg_rc'], $diag);
		$report = json_decode($GLOBALS['__stub_exec_bg_stdout'], true);
		$this->assertIsArray($report, "the wrapper passes the binary's JSON report through\n{$diag}");
		$this->assertSame('failover', $report['command']);
		$this->assertTrue($report['ok'], $diag);
		$this->assertCount(4, $report['actions'], $diag);
		foreach ($report['actions'] as $action) {
			$this->assertSame('wan@1', $action['vhid']);
			$this->assertSame('changed', $action['status'], $diag);
		}
		/* The wrapper (a child process) logged its summary under the program name awsha and, nothing having failed, filed no notice. */
		$calls = self::readStubLog($stubLog);
		$this->assertSame(array(array('awsha', LOG_INFO, "failover {$interface}: exit 0, actions: 4 changed")), self::syslogLines($calls), $diag);
		$this->assertSame(array(), self::callsOf($calls, 'file_notice'));
	}
}
