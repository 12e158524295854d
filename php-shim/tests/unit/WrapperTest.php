<?php

/*
 * The CLI wrapper, run as a program (as minicron and mwexec_bg run it), on
 * each pfSense release the stubs model (issue 12 point 2: logging). The
 * package's lines go to syslog under the program name "awsha" (so info.xml's
 * <logging> routes them to /var/log/awsha.log), never under PHP's "php"
 * (system.log); a failure is logged once — by the binary, which logs its own
 * failures at LOG_ERR — and the wrapper adds one summary line at info/notice.
 */
final class WrapperTest extends ShimTestCase {
	public static function profiles(): array {
		return array('2.7.2' => array('2.7.2'), '2.8' => array('2.8'), 'current' => array('current'));
	}

	private function answer(string $command, string $fixture, int $rc, string $stderr = ''): void {
		$this->scenario(array($command => array(
		    'rc' => $rc,
		    'stdout' => file_get_contents(dirname(__DIR__) . "/fixtures/reports/{$fixture}.json"),
		    'stderr' => $stderr)));
	}

	/* The package's syslog lines: [ident, priority, message] (not pfSense's own "New alert found" of file_notice()). */
	private static function lines(array $calls): array {
		return array_values(array_filter(self::syslogLines($calls), function ($l) {
			return !str_contains($l[2], 'New alert found: ');
		}));
	}

	private function assertOnlyAwshaLines(array $calls): void {
		foreach (self::lines($calls) as [$ident, $priority, $message]) {
			$this->assertSame('awsha', $ident, "a package line under another program name lands in system.log: {$message}");
		}
		foreach (self::callsOf($calls, 'openlog') as $open) {
			$this->assertSame(array('awsha', LOG_PID, LOG_USER), $open);
		}
		$this->assertSame(count(self::callsOf($calls, 'openlog')), count(self::callsOf($calls, 'closelog')), 'every openlog is closed again');
	}

	/** @dataProvider profiles */
	public function testAFailoverLogsOneInfoLineUnderTheProgramNameAwsha(string $profile): void {
		$this->answer('failover', 'failover-ok', 0);
		[$rc, $out, $err, $calls] = $this->runWrapper(array('failover', '1@ena0'), array('AWSHA_STUB_PROFILE' => $profile));
		$this->assertSame(0, $rc, $err);
		$this->assertSame(array('--json', 'failover', '1@ena0'), $this->fakeRuns()[0]['argv']);
		$this->assertSame('failover', json_decode($out, true)['command'], 'the report is passed through on stdout');
		$this->assertOnlyAwshaLines($calls);
		$this->assertSame(array(array('awsha', LOG_INFO, 'failover 1@ena0: exit 0, actions: 4 changed')), self::lines($calls));
		$this->assertSame(array(), self::callsOf($calls, 'log_error'), 'log_error() is LOG_ERR under "php" on 2.7 and 2.8');
		$this->assertSame(array(), self::callsOf($calls, 'logger'));
	}

	/** @dataProvider profiles */
	public function testAHealthyReconcileWritesNothing(string $profile): void {
		$this->answer('reconcile', 'reconcile-unchanged', 0);
		[$rc, , $err, $calls] = $this->runWrapper(array('reconcile'), array('AWSHA_STUB_PROFILE' => $profile));
		$this->assertSame(0, $rc, $err);
		$this->assertSame(array(), self::lines($calls), 'every minute on a healthy box: not a line, and surely none at warning or above');
		$this->assertSame(array(), self::callsOf($calls, 'file_notice'));
	}

	/** @dataProvider profiles */
	public function testAFailureIsLoggedByTheBinaryAndSummedUpByTheWrapperAtNotice(string $profile): void {
		$binary_line = "awsha: error: failover wan@1: route rtb-05ed6e7c46531c6c3 0.0.0.0/0 -> eni-0bb22222222222222 failed: InvalidRouteTableID.NotFound\n";
		$this->answer('failover', 'failover-route-failed', 1, $binary_line);
		[$rc, , $err, $calls] = $this->runWrapper(array('failover', '1@ena0'), array('AWSHA_STUB_PROFILE' => $profile));
		$this->assertSame(1, $rc, $err);
		$this->assertOnlyAwshaLines($calls);
		$this->assertSame(array(array('awsha', LOG_NOTICE,
		    'failover 1@ena0: exit 1, actions: 3 changed, 1 failed; notices: 1 new')), self::lines($calls),
		    'one summary; the failure itself is the binary\'s line');
		$this->assertStringContainsString($binary_line, $err, 'the binary\'s stderr is passed on');
	}

	public function testAnExit2ReportIsSummedUpWithoutRepeatingTheBinarysError(): void {
		$this->scenario(array('reconcile' => array('rc' => 2, 'stdout' => array(
		    'command' => 'reconcile', 'ok' => false, 'actions' => array(), 'split_brain' => array(), 'notices' => array(),
		    'error' => '/conf/config.xml: cannot read: No such file or directory (os error 2)'))));
		[$rc, , , $calls] = $this->runWrapper(array('reconcile'));
		$this->assertSame(2, $rc);
		$this->assertSame(array(array('awsha', LOG_NOTICE, 'reconcile: exit 2, no actions; notices: 1 new')), self::lines($calls));
	}

	public function testARunWithoutAReportIsLoggedAtErrorByTheWrapperAlone(): void {
		[$rc, , , $calls] = $this->runWrapper(array('reconcile'), array('AWSHA_BIN' => "{$this->tmp}/no-such-awsha"));
		$this->assertSame(127, $rc);
		$lines = self::lines($calls);
		$this->assertCount(1, $lines);
		[$ident, $priority, $message] = $lines[0];
		$this->assertSame(array('awsha', LOG_ERR), array($ident, $priority));
		$this->assertStringStartsWith('reconcile: exit 127: awsha reconcile exited 127 without a JSON report: ', $message);
	}

	public function testARepairIsSummedUpAtInfo(): void {
		$this->answer('reconcile', 'reconcile-repaired', 0);
		[$rc, , , $calls] = $this->runWrapper(array('reconcile'));
		$this->assertSame(0, $rc);
		$this->assertSame(array(array('awsha', LOG_INFO, 'reconcile: exit 0, actions: 1 changed, 4 unchanged; notices: 1 new')), self::lines($calls));
	}

	public function testAHungBinaryIsStoppedTenSecondsAfterItsDeadline(): void {
		/* minicron's runs never overlap: a run that never ends would stop the job for good. */
		$this->scenario(array('reconcile' => array('sleep' => 60, 'stdout' => array('command' => 'reconcile', 'ok' => true))));
		$started = microtime(true);
		[$rc, , $err, $calls] = $this->runWrapper(array('--deadline', '1', 'reconcile'));
		$this->assertLessThan(14, microtime(true) - $started);
		$this->assertSame(124, $rc, $err);
		$this->assertStringContainsString('no answer within 11 s', $err);
		$this->assertCount(1, self::callsOf($calls, 'file_notice'));
		$this->assertSame(array('awsha', LOG_ERR), array_slice(self::lines($calls)[0], 0, 2));
	}

	public function testNoArgumentsIsAUsageError(): void {
		[$rc, , $err, $calls] = $this->runWrapper(array());
		$this->assertSame(2, $rc);
		$this->assertStringContainsString('usage: awsha-run', $err);
		$this->assertSame(array(), $this->fakeRuns());
		$this->assertSame(array(), self::callsOf($calls, 'file_notice'));
	}

	/* In php-fpm (rc.carpmaster, the GUI) the ident must not stay "awsha" for pfSense's own lines. */
	public function testInProcessLinesOpenAndCloseTheirOwnIdent(): void {
		awsha_plugin_carp(array('type' => 'carp', 'event' => 'rc.carpmaster', 'interface' => '--config=/tmp/x'));
		$lines = self::syslogLines($GLOBALS['__stub_calls']);
		$this->assertCount(1, $lines);
		$this->assertSame(array('awsha', LOG_WARNING), array_slice($lines[0], 0, 2));
		$this->assertArrayNotHasKey('__stub_syslog_ident', $GLOBALS, 'closelog() after the line');
		syslog(LOG_ERR, 'a pfSense line');
		$this->assertSame('php', self::syslogLines($GLOBALS['__stub_calls'])[1][0]);
	}
}
