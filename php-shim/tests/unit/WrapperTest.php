<?php

/* The CLI wrapper, run as a program (as minicron and mwexec_bg run it). */
final class WrapperTest extends ShimTestCase {
	private function cannedFailover(int $rc = 1): void {
		$this->scenario(array('failover' => array(
		    'rc' => $rc,
		    'stdout' => file_get_contents(dirname(__DIR__) . '/fixtures/reports/failover-failed-split.json'),
		    'stderr' => "INFO awsha: failover wan@1\n")));
	}

	public function testFailedActionAndSplitBrainBecomeOneNoticeEachAndTheExitCodeIsKept(): void {
		$this->cannedFailover(1);
		[$rc, $out, $err, $calls] = $this->runWrapper(array('failover', '1@ena0'));

		$this->assertSame(1, $rc, $err);
		$this->assertSame(array('--json', 'failover', '1@ena0'), $this->fakeRuns()[0]['argv']);
		$this->assertSame('failover', json_decode($out, true)['command'], 'the report is passed through on stdout');

		$notices = self::callsOf($calls, 'file_notice');
		$this->assertCount(2, $notices);
		foreach ($notices as $n) {
			$this->assertSame(array('awsha', 'AWS HA', '', 2), array($n[0], $n[2], $n[3], $n[4]));
			$this->assertStringNotContainsString("\n", $n[1]);
		}
		[$failed, $split] = array($notices[0][1], $notices[1][1]);
		foreach (array('failover', 'route', 'rtb-05ed6e7c46531c6c3', 'wan@1', 'InvalidRouteTableID.NotFound', '0.0.0.0/0 -> eni-0bb22222222222222') as $part) {
			$this->assertStringContainsString($part, $failed);
		}
		foreach (array('split brain', 'eipalloc-0a1b2c3d4e5f67890', 'wan@1', 'i-0fedcba9876543210', 'reclaimed', 'advskew 100') as $part) {
			$this->assertStringContainsString($part, $split);
		}

		$summary = self::callsOf($calls, 'logger');
		$this->assertNotEmpty($summary);
		[$priority, $line, $prefix] = $summary[0];
		$this->assertSame(LOG_ERR, $priority);
		$this->assertSame('AWS HA', $prefix);
		$this->assertStringContainsString('awsha failover 1@ena0: exit 1', $line);
		$this->assertStringContainsString('1 changed, 1 failed, 1 unchanged', $line);
		$this->assertStringContainsString('1 split brain', $line);
		$this->assertSame(array(), self::callsOf($calls, 'log_error'));
	}

	public function testTheReportsOwnNoticesGoToSyslogNotToTheNoticeQueue(): void {
		$this->cannedFailover(1);
		[, , , $calls] = $this->runWrapper(array('failover', '1@ena0'));
		$lines = array_column(self::callsOf($calls, 'logger'), 1);
		$this->assertCount(2, $lines);
		$this->assertStringContainsString('error: route rtb-05ed6e7c46531c6c3: InvalidRouteTableID.NotFound', $lines[1]);
		$this->assertCount(2, self::callsOf($calls, 'file_notice'));
	}

	public function testARepairWarningBecomesANoticeButInfoDoesNot(): void {
		$this->scenario(array('reconcile' => array(
		    'rc' => 0,
		    'stdout' => file_get_contents(dirname(__DIR__) . '/fixtures/reports/reconcile-repaired.json'),
		    'stderr' => '')));
		[$rc, , $err, $calls] = $this->runWrapper(array('reconcile'));
		$this->assertSame(0, $rc, $err);
		$notices = self::callsOf($calls, 'file_notice');
		$this->assertCount(1, $notices, 'design.md §6.1: a repair files a notice; info stays in the log');
		$this->assertStringContainsString('rtb-05ed6e7c46531c6c3 pointed at eni-0cc33333333333333; moved back here', $notices[0][1]);
	}

	public function testAFailedRunWithoutFailedActionsSaysWhyInItsNotice(): void {
		$this->scenario(array('failover' => array(
		    'rc' => 1,
		    'stdout' => file_get_contents(dirname(__DIR__) . '/fixtures/reports/failover-tagging-failed.json'),
		    'stderr' => '')));
		[$rc, , $err, $calls] = $this->runWrapper(array('failover', '1@ena0'));
		$this->assertSame(1, $rc, $err);
		$notices = self::callsOf($calls, 'file_notice');
		$this->assertCount(1, $notices);
		$this->assertStringContainsString('exited 1: failover wan@1: tagging eni-0aa11111111111111 failed: UnauthorizedOperation', $notices[0][1]);
	}

	public function testWithoutLoggerTheSummaryGoesToLogError(): void {
		$this->cannedFailover(1);
		[$rc, , $err, $calls] = $this->runWrapper(array('failover', '1@ena0'), array('AWSHA_STUB_NO_LOGGER' => '1'));
		$this->assertSame(1, $rc, $err);
		$this->assertSame(array(), self::callsOf($calls, 'logger'));
		$logged = self::callsOf($calls, 'log_error');
		$this->assertNotEmpty($logged);
		$this->assertStringStartsWith('awsha: awsha failover 1@ena0: exit 1', $logged[0][0]);
	}

	public function testAReportWithAnErrorFilesOneNoticeAndExits2(): void {
		$this->scenario(array('reconcile' => array('rc' => 2, 'stdout' => array(
		    'command' => 'reconcile', 'ok' => false, 'error' => "cannot read /conf/config.xml:\nNo such file or directory"))));
		[$rc, , $err, $calls] = $this->runWrapper(array('reconcile'));
		$this->assertSame(2, $rc, $err);
		$notices = self::callsOf($calls, 'file_notice');
		$this->assertCount(1, $notices);
		$this->assertSame('awsha reconcile failed: cannot read /conf/config.xml: No such file or directory', $notices[0][1]);
		$this->assertSame(2, $notices[0][4]);
		$this->assertStringContainsString('error: cannot read /conf/config.xml', self::callsOf($calls, 'logger')[0][1]);
	}

	public function testAllGoodFilesNoNoticeAndExits0(): void {
		$this->scenario(array('reconcile' => array('rc' => 0, 'stdout' => array(
		    'command' => 'reconcile', 'ok' => true, 'instance' => 'i-0123456789abcdef0',
		    'vhids' => array(array('vhid' => 'wan@1', 'state' => 'MASTER')),
		    'actions' => array(
		        array('vhid' => 'wan@1', 'kind' => 'ip', 'resource' => 'eni-0aa', 'target' => '10.0.1.10', 'status' => 'unchanged', 'ms' => 0),
		        array('vhid' => 'wan@1', 'kind' => 'route', 'resource' => 'rtb-05e', 'target' => '0.0.0.0/0', 'status' => 'skipped', 'reason' => 'recent change', 'ms' => 0),
		    ),
		    'split_brain' => array(), 'notices' => array()))));
		[$rc, , $err, $calls] = $this->runWrapper(array('reconcile'));
		$this->assertSame(0, $rc, $err);
		$this->assertSame(array(), self::callsOf($calls, 'file_notice'));
		$log = self::callsOf($calls, 'logger');
		$this->assertCount(1, $log);
		$this->assertSame(LOG_NOTICE, $log[0][0]);
		$this->assertSame('awsha reconcile: exit 0, actions: 1 skipped, 1 unchanged', $log[0][1]);
	}

	public function testADeferredSplitBrainStillFilesANotice(): void {
		$this->scenario(array('reconcile' => array('rc' => 0, 'stdout' => array(
		    'command' => 'reconcile', 'ok' => true,
		    'actions' => array(array('vhid' => 'lan@2', 'kind' => 'route', 'resource' => 'rtb-1', 'target' => 'x', 'status' => 'deferred', 'ms' => 3)),
		    'split_brain' => array(array('vhid' => 'lan@2', 'resource' => 'rtb-1', 'by_instance' => 'i-0aaa', 'advbase' => 1,
		        'advskew' => 0, 'at' => '2026-11-26T10:00:00.123Z', 'resolution' => 'deferred'))))));
		[$rc, , , $calls] = $this->runWrapper(array('reconcile'));
		$this->assertSame(0, $rc);
		$notices = self::callsOf($calls, 'file_notice');
		$this->assertCount(1, $notices);
		$this->assertStringContainsString('lan@2: rtb-1 was changed by i-0aaa', $notices[0][1]);
		$this->assertStringContainsString('resolution: deferred', $notices[0][1]);
	}

	public function testAMissingBinaryFilesOneNoticeAndKeepsTheShellsExitCode(): void {
		[$rc, , , $calls] = $this->runWrapper(array('reconcile'), array('AWSHA_BIN' => "{$this->tmp}/no-such-awsha"));
		$this->assertSame(127, $rc);
		$notices = self::callsOf($calls, 'file_notice');
		$this->assertCount(1, $notices);
		$this->assertStringStartsWith('awsha reconcile exited 127 without a JSON report: ', $notices[0][1]);
		$this->assertStringContainsString('no-such-awsha', $notices[0][1]);
	}

	public function testAFailureWithoutDetailsStillFilesANotice(): void {
		$this->scenario(array('reconcile' => array('rc' => 1, 'stdout' => array('command' => 'reconcile', 'ok' => false, 'actions' => array()))));
		[$rc, , , $calls] = $this->runWrapper(array('reconcile'));
		$this->assertSame(1, $rc);
		$notices = self::callsOf($calls, 'file_notice');
		$this->assertCount(1, $notices);
		$this->assertSame('awsha reconcile exited 1', $notices[0][1]);
	}

	public function testNoArgumentsIsAUsageError(): void {
		[$rc, , $err, $calls] = $this->runWrapper(array());
		$this->assertSame(2, $rc);
		$this->assertStringContainsString('usage: awsha-run', $err);
		$this->assertSame(array(), $this->fakeRuns());
		$this->assertSame(array(), self::callsOf($calls, 'file_notice'));
	}
}
