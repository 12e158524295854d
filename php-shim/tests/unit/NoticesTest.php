<?php

/*
 * Notices on change (issue 12 point 3): the wrapper files the binary's own
 * notice texts, one per new condition (keyed by the report's notice "key"),
 * a reminder at most hourly while it lasts, one "resolved" notice when it
 * clears; state in AWSHA_RUN_DIR/awsha.notices.json under a lock.
 * pfSense's side is the stub of notices.inc: an unlocked queue, and
 * notify_all_remote() counted.
 */
final class NoticesTest extends ShimTestCase {
	private array $calls = array();

	private static function report(string $name, array $override = array()): array {
		return array_merge(json_decode(file_get_contents(dirname(__DIR__) . "/fixtures/reports/{$name}.json"), true), $override);
	}

	private static function answer(string $name, int $rc, array $override = array()): array {
		return array('rc' => $rc, 'stdout' => self::report($name, $override), 'stderr' => '');
	}

	/* Runs the wrapper once per answer of the sequence; the stub calls of all runs add up in $this->calls. */
	private function runs(string $command, array $answers, array $args = array(), array $env = array()): array {
		$this->scenario(array($command => array('sequence' => $answers)));
		$codes = array();
		foreach ($answers as $unused) {
			[$rc, , $err, $calls] = $this->runWrapper(array_merge(array($command), $args), $env);
			$this->assertNotSame(255, $rc, $err);
			$this->assertStringNotContainsString('PHP ', $err);
			$this->calls = array_merge($this->calls, $calls);
			$codes[] = $rc;
		}
		return $codes;
	}

	private function filed(): array {
		return self::callsOf($this->calls, 'file_notice');
	}

	private function state(): array {
		$file = "{$this->runDir}/awsha.notices.json";
		$this->assertFileExists($file);
		return json_decode(file_get_contents($file), true);
	}

	private function editState(callable $edit): void {
		$state = $this->state();
		$state = $edit($state);
		file_put_contents("{$this->runDir}/awsha.notices.json", json_encode($state));
	}

	private const ROUTE_KEY = 'failed:wan@1:route:rtb-05ed6e7c46531c6c3';

	public function testALastingFailureFilesOneNoticeAndOneWhenItIsResolved(): void {
		$codes = $this->runs('reconcile', array(
		    self::answer('reconcile-route-failed', 1),
		    self::answer('reconcile-route-failed', 1),
		    self::answer('reconcile-unchanged', 0),
		));
		$this->assertSame(array(1, 1, 0), $codes, 'the exit codes are awsha\'s');

		$filed = $this->filed();
		$this->assertCount(2, $filed, 'a failure twice and its recovery: 1 + 1 notices');
		$message = self::report('reconcile-route-failed')['notices'][0]['message'];
		$this->assertSame(array('awsha', "awsha: {$message}", 'AWS HA', '', 2, true), $filed[0], 'the binary\'s own text, priority error');
		$this->assertSame('awsha', $filed[1][0]);
		$this->assertStringStartsWith('awsha: resolved (', $filed[1][1]);
		$this->assertStringEndsWith($message, $filed[1][1]);
		$this->assertSame(0, $filed[1][4], 'a resolution is informational');

		/* Each filed notice goes to the remote channels exactly once (not per run). */
		$this->assertSame(array_column($filed, 1), array_column(self::callsOf($this->calls, 'notify_all_remote'), 0));
		$this->assertCount(2, $this->noticeQueue(), 'pfSense\'s queue holds both');
		$this->assertSame(array(), $this->state()['conditions'], 'nothing left outstanding');
	}

	public function testAReminderComesAtMostHourlyWhileTheConditionLasts(): void {
		$fail = self::answer('reconcile-route-failed', 1);
		$this->runs('reconcile', array($fail, $fail));
		$this->assertCount(1, $this->filed());
		$state = $this->state()['conditions'][self::ROUTE_KEY];
		$this->assertSame(2, $state['runs']);
		$this->assertSame('error', $state['level']);

		$this->editState(function ($s) {
			$s['conditions'][self::ROUTE_KEY]['last_filed'] = time() - 3590;
			return $s;
		});
		$this->runs('reconcile', array($fail));
		$this->assertCount(1, $this->filed(), 'not before an hour has passed');

		$this->editState(function ($s) {
			$s['conditions'][self::ROUTE_KEY]['first'] = time() - 7200;
			$s['conditions'][self::ROUTE_KEY]['last_filed'] = time() - 3601;
			return $s;
		});
		$this->runs('reconcile', array($fail));
		$filed = $this->filed();
		$this->assertCount(2, $filed);
		$this->assertMatchesRegularExpression('/^awsha: still unresolved since \d{4}-\d\d-\d\d \d\d:\d\d UTC \(4 runs\): reconcile wan@1: route rtb-05ed6e7c46531c6c3 /', $filed[1][1]);
		$this->assertSame(2, $filed[1][4]);
		$this->assertCount(2, self::callsOf($this->calls, 'notify_all_remote'));
		$this->assertGreaterThanOrEqual(time() - 5, $this->state()['conditions'][self::ROUTE_KEY]['last_filed']);
	}

	public function testARepairWarningIsFiledOnceAndClearsWithoutANotice(): void {
		$repaired = self::answer('reconcile-repaired', 0);
		$this->runs('reconcile', array($repaired, $repaired, self::answer('reconcile-unchanged', 0), $repaired));
		$filed = $this->filed();
		$this->assertCount(2, $filed, 'once while it lasts; again only after it had cleared');
		foreach ($filed as $n) {
			$this->assertSame('awsha: ' . self::report('reconcile-repaired')['notices'][0]['message'], $n[1]);
			$this->assertSame(1, $n[4], 'a warning');
		}
		foreach ($filed as $n) {
			$this->assertStringNotContainsString('DescribeAddresses', $n[1], 'info notices stay out of the queue');
		}
	}

	public function testASplitBrainIsFiledOnceWhileItLastsAndResolvedWhenTheResourceStaysHere(): void {
		$split = self::answer('reconcile-split-brain', 0);
		$this->runs('reconcile', array($split, $split, $split, self::answer('reconcile-unchanged', 0)));
		$filed = $this->filed();
		$this->assertCount(2, $filed);
		$this->assertStringContainsString('split brain on wan@1: i-0fedcba9876543210', $filed[0][1]);
		$this->assertSame(2, $filed[0][4]);
		$this->assertStringStartsWith('awsha: resolved (', $filed[1][1]);
	}

	public function testAnExit2ErrorIsOneConditionUntilTheCommandRunsWithoutError(): void {
		$error = array('rc' => 2, 'stdout' => array('command' => 'reconcile', 'ok' => false, 'actions' => array(), 'split_brain' => array(),
		    'notices' => array(), 'error' => '/conf/config.xml: cannot read: No such file or directory (os error 2)'));
		$this->runs('reconcile', array($error, $error, self::answer('reconcile-unchanged', 0)));
		$filed = $this->filed();
		$this->assertCount(2, $filed);
		$this->assertSame('awsha: reconcile failed: /conf/config.xml: cannot read: No such file or directory (os error 2)', $filed[0][1]);
		$this->assertSame(2, $filed[0][4]);
		$this->assertStringStartsWith('awsha: resolved (reconcile ran without error): reconcile failed:', $filed[1][1]);
	}

	public function testAMissingBinaryIsOneCondition(): void {
		$missing = array('AWSHA_BIN' => "{$this->tmp}/no-such-awsha");
		foreach (array(1, 2) as $unused) {
			[$rc, , , $calls] = $this->runWrapper(array('reconcile'), $missing);
			$this->assertSame(127, $rc);
			$this->calls = array_merge($this->calls, $calls);
		}
		$filed = $this->filed();
		$this->assertCount(1, $filed);
		$this->assertStringStartsWith('awsha: reconcile exited 127 without a JSON report: ', $filed[0][1]);
		$this->assertStringContainsString('no-such-awsha', $filed[0][1]);
		$this->assertArrayHasKey('error:reconcile', $this->state()['conditions']);
	}

	public function testBecomingBackupResolvesTheVhidsConditions(): void {
		$this->runs('reconcile', array(self::answer('reconcile-route-failed', 1), self::answer('reconcile-backup', 0)));
		$filed = $this->filed();
		$this->assertCount(2, $filed);
		$this->assertStringStartsWith('awsha: resolved (this node is BACKUP for wan@1): reconcile wan@1: route', $filed[1][1]);
	}

	public function testAVhidNoLongerNamedByAnyRowResolvesItsConditions(): void {
		$gone = self::answer('reconcile-unchanged', 0);
		$gone['stdout']['vhids'] = array(array('vhid' => 'lan@2', 'state' => 'MASTER'));
		$gone['stdout']['actions'] = array_values(array_filter($gone['stdout']['actions'], function ($a) {
			return $a['vhid'] === 'lan@2';
		}));
		$this->runs('reconcile', array(self::answer('reconcile-route-failed', 1), $gone));
		$this->assertStringStartsWith('awsha: resolved (no awsha row names wan@1 any more)', $this->filed()[1][1]);
	}

	public function testAFailoverThatIsNotMasterJudgesNothing(): void {
		$skipped = self::answer('failover-ok', 0);
		foreach ($skipped['stdout']['actions'] as &$a) {
			$a['status'] = 'skipped';
			$a['reason'] = 'not MASTER (BACKUP)';
		}
		unset($a);
		$this->runs('failover', array(self::answer('failover-route-failed', 1), $skipped, self::answer('failover-ok', 0)), array('1@ena0'));
		$filed = $this->filed();
		$this->assertCount(2, $filed);
		$this->assertStringStartsWith('awsha: failover wan@1: route rtb-05ed6e7c46531c6c3 ', $filed[0][1]);
		$this->assertStringStartsWith('awsha: resolved (failover found it in order)', $filed[1][1], 'only the third run judged it');
	}

	public function testAFailureIsNotResolvedWhileAnotherRowOfTheSameTableCannotBeJudged(): void {
		/* Both route rows of wan@1 on one table: one skipped (recent change), one unchanged. */
		$judged = self::answer('reconcile-unchanged', 0);
		$judged['stdout']['actions'][] = array('vhid' => 'wan@1', 'kind' => 'route', 'resource' => 'rtb-05ed6e7c46531c6c3',
		    'target' => '10.50.0.0/16 -> eni-0bb22222222222222', 'status' => 'skipped', 'reason' => 'recent change (less than 15 s old)', 'ms' => 0);
		$this->runs('reconcile', array(self::answer('reconcile-route-failed', 1), $judged, self::answer('reconcile-unchanged', 0)));
		$filed = $this->filed();
		$this->assertCount(2, $filed);
		$this->assertArrayNotHasKey(self::ROUTE_KEY, $this->state()['conditions']);
	}

	public function testATaggingOrLockFailureClearsWhenTheVhidIsHandledAgain(): void {
		$lock = self::answer('failover-ok', 1, array('ok' => false,
		    'notices' => array(array('level' => 'error', 'key' => 'lock:wan@1', 'vhid' => 'wan@1',
		        'message' => 'failover wan@1: timed out waiting for another failover of wan@1'))));
		foreach ($lock['stdout']['actions'] as &$a) {
			$a['status'] = 'failed';
			$a['error'] = 'timed out waiting for the lock';
		}
		unset($a);
		$this->runs('failover', array(self::answer('failover-tagging-failed', 1), $lock, self::answer('failover-ok', 0)), array('1@ena0'));
		$filed = array_column($this->filed(), 1);
		$this->assertCount(4, $filed);
		$this->assertStringContainsString('tagging eni-0aa11111111111111 failed', $filed[0]);
		$this->assertStringContainsString('timed out waiting for another failover', $filed[1]);
		$this->assertStringStartsWith('awsha: resolved (failover found it in order): failover wan@1: tagging', $filed[2], 'the lock run has no action in order');
		$this->assertStringStartsWith('awsha: resolved (failover found it in order): failover wan@1: timed out', $filed[3]);
	}

	public function testInfoAndCleanReportsFileNothing(): void {
		$disabled = array('rc' => 0, 'stdout' => array('command' => 'reconcile', 'ok' => true, 'actions' => array(), 'split_brain' => array(),
		    'notices' => array(array('level' => 'info', 'key' => 'disabled', 'message' => 'reconcile is switched off in the awsha settings; nothing checked'))));
		$this->runs('reconcile', array($disabled, self::answer('reconcile-unchanged', 0)));
		$this->assertSame(array(), $this->filed());
		$this->assertSame(array(), self::callsOf($this->calls, 'notify_all_remote'));
	}

	public function testANoticeWithoutAKeyFromAnOlderBinaryIsKeyedByItsText(): void {
		$old = self::answer('failover-route-failed', 1);
		unset($old['stdout']['notices'][0]['key'], $old['stdout']['notices'][0]['vhid']);
		$this->runs('failover', array($old, $old), array('1@ena0'));
		$this->assertCount(1, $this->filed());
	}

	public function testABrokenStateFileIsStartedAfreshAndSaysSo(): void {
		file_put_contents("{$this->runDir}/awsha.notices.json", '{"conditions": [garbage');
		$this->runs('reconcile', array(self::answer('reconcile-route-failed', 1)));
		$this->assertCount(1, $this->filed());
		$this->assertArrayHasKey(self::ROUTE_KEY, $this->state()['conditions']);
		$warned = array_filter(self::syslogLines($this->calls), function ($l) {
			return $l[0] === 'awsha' && str_contains($l[2], 'awsha.notices.json');
		});
		$this->assertCount(1, $warned);
	}

	/*
	 * rc.carpmaster fires once per VHID, so several failovers (and their wrappers) run at
	 * once. pfSense's file_notice() rewrites its queue without a lock: the wrappers must
	 * take turns, or notices vanish from the queue — and from the state.
	 */
	public function testConcurrentFailoversLoseNoNotice(): void {
		$vhids = array(1, 2, 3, 4, 5, 6);
		$start = microtime(true) + 1.0;
		$scenario = array();
		foreach ($vhids as $n) {
			$vhid = "opt{$n}@{$n}";
			$failed = array('vhid' => $vhid, 'kind' => 'ip', 'resource' => "eni-0{$n}{$n}000000000000000", 'target' => "10.0.{$n}.10",
			    'status' => 'failed', 'ms' => 5, 'error' => 'UnauthorizedOperation: not allowed');
			$scenario["failover {$n}@ena{$n}"] = array('rc' => 1, 'start_at' => $start, 'stdout' => array(
			    'command' => 'failover', 'ok' => false, 'actions' => array($failed), 'split_brain' => array(),
			    'notices' => array(array('level' => 'error', 'key' => "failed:{$vhid}:ip:{$failed['resource']}", 'vhid' => $vhid,
			        'message' => "failover {$vhid}: ip {$failed['resource']} {$failed['target']} failed: {$failed['error']}"))));
		}
		$this->scenario($scenario);
		$stubLog = "{$this->tmp}/stubs.log";
		$env = array_merge(getenv(), array('AWSHA_STUB_LOG' => $stubLog));
		$procs = array();
		foreach ($vhids as $n) {
			$procs[$n] = proc_open(array(PHP_BINARY, AWSHA_WRAPPER, 'failover', "{$n}@ena{$n}"),
			    array(0 => array('file', '/dev/null', 'r'), 1 => array('file', '/dev/null', 'w'), 2 => array('file', "{$this->tmp}/err{$n}", 'w')),
			    $pipes, $this->tmp, $env);
		}
		foreach ($procs as $n => $proc) {
			$this->assertSame(1, proc_close($proc), (string)@file_get_contents("{$this->tmp}/err{$n}"));
		}
		$calls = self::readStubLog($stubLog);
		$this->assertCount(6, self::callsOf($calls, 'file_notice'));
		$this->assertCount(6, self::callsOf($calls, 'notify_all_remote'));
		$this->assertCount(6, $this->noticeQueue(), 'none lost from pfSense\'s queue');
		$this->assertCount(6, $this->state()['conditions'], 'none lost from the state');
	}
}
