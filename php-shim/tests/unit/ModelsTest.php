<?php

/*
 * The stubs' models of pfSense reproduce what the issue is about, with a
 * package other than awsha — so that a test of awsha against them means
 * something.
 */
final class ModelsTest extends ShimTestCase {
	/* A package "dummy" (dummy.xml) that declares plugin_xmlrpc_recv and returns nothing to write. */
	private function installDummyReceiver(): void {
		$GLOBALS['__stub_peer'] = self::baseConfig();
		$GLOBALS['__stub_peer']['virtualip']['vip'][0]['advskew'] = '100';
		$GLOBALS['__stub_peer']['installedpackages']['package'] = array(array('name' => 'dummy', 'configurationfile' => 'dummy.xml',
		    'include_file' => dirname(__DIR__) . '/fixtures/dummy-receiver.inc', 'plugins' => array('item' => array(array('type' => 'plugin_xmlrpc_recv')))));
		$GLOBALS['config']['hasync'] = array('synchronizetoip' => '10.0.9.2', 'password' => 'x', 'synchronizevirtualip' => 'on');
	}

	public static function expectations(): array {
		return array(
		    '2.7.2: no hooks, VIPs configured' => array('2.7.2', true),
		    '2.8: $sections overwritten, VIPs written but not configured' => array('2.8', false),
		    'current: fixed by 7a9b526322' => array('current', true),
		);
	}

	/** @dataProvider expectations */
	public function testAnyPackageDeclaringTheReceiveHookBreaksVipSyncOn28(string $profile, bool $configured): void {
		$this->installDummyReceiver();
		$GLOBALS['__stub_profile'] = $profile;
		awsha_stub_rc_filter_synchronize();
		$this->assertSame('0', $GLOBALS['__stub_peer']['virtualip']['vip'][0]['advskew'], 'always written to config.xml');
		$this->assertSame($configured ? array(array('wan', '1', '0')) : array(), $this->stubCalls('interface_carp_configure'));
	}

	public function testMinicronsPidfileComesAfterTheProgramReturns(): void {
		$pidfile = "{$this->runDir}/job.pid";
		$started = microtime(true);
		exec(escapeshellarg(AWSHA_FAKE_MINICRON) . ' 60 ' . escapeshellarg($pidfile) . " 'true'", $out, $rc);
		$this->assertSame(0, $rc);
		$this->assertLessThan(0.25, microtime(true) - $started, 'returns at once (daemon(0,0))');
		$this->assertFileDoesNotExist($pidfile, 'not yet');
		usleep(600000);
		$this->assertFileExists($pidfile);
		$pid = (int)file_get_contents($pidfile);
		$this->assertSame(array($pid), $this->liveMinicrons());
		posix_kill($pid, SIGTERM);
		usleep(100000);
		$this->assertTrue(awsha_stub_alive($pid), 'still exiting a moment after SIGTERM');
		usleep(500000);
		$this->assertFalse(awsha_stub_alive($pid));
		$this->assertFileExists($pidfile, 'left behind');
	}

	public function testPfSensesNoticeQueueLosesEntriesToConcurrentWriters(): void {
		$code = 'require "notices.inc"; file_notice("x", "n" . getmypid());';
		$procs = array();
		foreach (range(1, 6) as $n) {
			$procs[] = proc_open(array(PHP_BINARY, '-r', $code), array(0 => array('file', '/dev/null', 'r'), 1 => array('file', '/dev/null', 'w'),
			    2 => array('file', '/dev/null', 'w')), $pipes, $this->tmp, array_merge(getenv(), array('AWSHA_STUB_NOTICE_GAP_MS' => '300')));
		}
		foreach ($procs as $proc) {
			proc_close($proc);
		}
		$this->assertLessThan(6, count($this->noticeQueue()), 'file_notice() rewrites notices.serial without a lock');
	}

	/* The suite's own bound: a hung child is killed, not waited for (PHPUnit has no time limit). */
	public function testRunProgramKillsAChildThatOutlivesItsTimeout(): void {
		$started = microtime(true);
		[$rc, $out, $err] = self::runProgram(array('/bin/sh', '-c', 'echo started; exec sleep 30'), $this->tmp, null, 1.0);
		$this->assertSame(124, $rc);
		$this->assertSame("started\n", $out, 'what it wrote before is kept');
		$this->assertStringContainsString('killed after 1 s', $err);
		$this->assertLessThan(10, microtime(true) - $started);
	}

	public function testLoggerExistsOnlyOnCurrent(): void {
		foreach (array('2.7.2' => 'no', '2.8' => 'no', 'current' => 'yes') as $profile => $expected) {
			[, $out] = self::runProgram(array(PHP_BINARY, '-r', 'require "util.inc"; echo function_exists("logger") ? "yes" : "no"; log_error("x");'),
			    $this->tmp, array_merge(getenv(), array('AWSHA_STUB_PROFILE' => $profile, 'AWSHA_STUB_LOG' => "{$this->tmp}/{$profile}.log")));
			$this->assertSame($expected, $out, $profile);
			$syslog = self::syslogLines(self::readStubLog("{$this->tmp}/{$profile}.log"));
			$this->assertSame('php', $syslog[0][0], "{$profile}: log_error() is under PHP's ident");
			$this->assertSame(LOG_ERR, $syslog[0][1]);
		}
	}
}
