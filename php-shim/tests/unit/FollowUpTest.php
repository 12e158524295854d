<?php

/*
 * Follow-up reconciles after a failover (issue 15 point 1), with the fake
 * binary: who asks for them, the one loop per node, when it stops, and that
 * the CARP hook still returns at once. The real binary against moto and the
 * fault proxy: tests/integration/test_shim_followup_real_binary.py.
 */
final class FollowUpTest extends ShimTestCase {
	private const FAST = array('AWSHA_FOLLOWUP_INTERVAL' => '0.1', 'AWSHA_FOLLOWUP_SETTLE' => '0', 'AWSHA_FOLLOWUP_QUIET' => '3',
	    'AWSHA_FOLLOWUP_WINDOW' => '20');

	protected function tearDown(): void {
		foreach (array_keys(self::FAST) as $name) {
			putenv($name);
		}
		putenv('AWSHA_STUB_EXEC_BG');
		parent::tearDown();
	}

	private static function fixture(string $name): array {
		return json_decode(file_get_contents(dirname(__DIR__) . "/fixtures/reports/{$name}.json"), true);
	}

	/* A reconcile report: wan@1 in $state with its actions all $status (lan@2 MASTER, in sync). */
	private static function reconcile(string $status, string $state = 'MASTER'): array {
		$report = self::fixture('reconcile-repaired');
		$report['vhids'][0]['state'] = $state;
		$report['notices'] = array();
		foreach ($report['actions'] as $n => $a) {
			$report['actions'][$n]['status'] = ($a['vhid'] === 'wan@1') ? $status : 'unchanged';
		}
		if ($state !== 'MASTER') {
			$report['actions'] = array_values(array_filter($report['actions'], function ($a) {
				return $a['vhid'] !== 'wan@1';
			}));
		}
		return $report;
	}

	private function followed(): array {
		$file = "{$this->runDir}/awsha.followup.json";
		return is_file($file) ? array_keys(json_decode(file_get_contents($file), true)['vhids']) : array();
	}

	private function followUpStarts(array $calls): array {
		return array_values(array_filter(self::callsOf($calls, 'mwexec_bg'), function ($c) {
			return str_contains($c[0], "'--follow-up'");
		}));
	}

	/* The wrapper's lines about follow-ups. */
	private static function followUpLines(array $calls): array {
		return array_values(array_filter(self::syslogLines($calls), function ($l) {
			return str_starts_with($l[2], 'follow-up reconciles of ');
		}));
	}

	private function reconcileRuns(): array {
		return array_values(array_filter($this->fakeRuns(), function ($r) {
			return in_array('reconcile', $r['argv'], true);
		}));
	}

	/* ---------------- who asks ---------------- */

	public function testAFailoverThatActedAsksForFollowUpsOfItsVhidInTheBackground(): void {
		$this->scenario(array('failover' => array('rc' => 0, 'stdout' => self::fixture('failover-ok'))));
		[$rc, , $err, $calls] = $this->runWrapper(array('failover', '1@ena0'));
		$this->assertSame(0, $rc, $err);
		$starts = $this->followUpStarts($calls);
		$this->assertCount(1, $starts, 'the loop is started in the background (mwexec_bg), never in the foreground');
		$this->assertSame(array(AWSHA_PHP, AWSHA_RUN, '--follow-up'), $this->shellWords($starts[0][0]));
		$this->assertSame(array('wan@1'), $this->followed(), 'keyed by the VHID as reports write it');
		$this->assertCount(1, $this->fakeRuns(), 'the failover wrapper itself runs nothing more');
	}

	public function testAFailedFailoverIsFollowedToo(): void {
		$this->scenario(array('failover' => array('rc' => 1, 'stdout' => self::fixture('failover-route-failed'))));
		[$rc, , , $calls] = $this->runWrapper(array('failover', '1@ena0'));
		$this->assertSame(1, $rc);
		$this->assertCount(1, $this->followUpStarts($calls));
		$this->assertSame(array('wan@1'), $this->followed());
	}

	public function testAFailoverWithoutAReportIsFollowedUnderTheVhidItNamed(): void {
		/* IMDS down at the failover, say: nothing was done, the follow-ups do it. */
		$GLOBALS['config']['installedpackages']['awsha']['config'] = array(array('enable' => 'on'));
		$config = "{$this->tmp}/config.json";
		file_put_contents($config, json_encode($GLOBALS['config']));
		[, , , $calls] = $this->runWrapper(array('failover', '2@ena1'), array('AWSHA_BIN' => "{$this->tmp}/no-such-awsha", 'AWSHA_STUB_CONFIG' => $config));
		$this->assertCount(1, $this->followUpStarts($calls));
		$this->assertSame(array('lan@2'), $this->followed(), '2@ena1 is lan@2 (interfaces/lan/if = ena1)');
	}

	public function testNoFollowUpsForADryRunANodeThatIsNotMasterOrReconcileOff(): void {
		$skipped = self::fixture('failover-ok');
		foreach ($skipped['actions'] as $n => $a) {
			$skipped['actions'][$n]['status'] = 'skipped';
			$skipped['actions'][$n]['reason'] = 'this node is BACKUP for wan@1';
		}
		$this->scenario(array('failover' => array('rc' => 0, 'stdout' => $skipped)));
		[, , , $calls] = $this->runWrapper(array('failover', '1@ena0'));
		$this->assertSame(array(), $this->followUpStarts($calls), 'not MASTER: the peer follows up');

		$this->scenario(array('failover' => array('rc' => 0, 'stdout' => self::fixture('failover-ok'))));
		[, , , $calls] = $this->runWrapper(array('failover', '1@ena0', '--dry-run'));
		$this->assertSame(array(), $this->followUpStarts($calls), 'a dry run changed nothing to follow');

		$GLOBALS['config']['installedpackages']['awsha']['config'] = array(array('enable' => '', 'endpoint' => '', 'region' => ''));
		$config = "{$this->tmp}/config.json";
		file_put_contents($config, json_encode($GLOBALS['config']));
		[, , , $calls] = $this->runWrapper(array('failover', '1@ena0'), array('AWSHA_STUB_CONFIG' => $config));
		$this->assertSame(array(), $this->followUpStarts($calls), 'Reconcile off: reconcile checks nothing');
		$this->assertSame(array(), $this->followed());
	}

	public function testReconcileAndOtherCommandsAskForNothing(): void {
		$this->scenario(array('reconcile' => array('rc' => 0, 'stdout' => self::fixture('reconcile-repaired'))));
		[, , , $calls] = $this->runWrapper(array('reconcile'));
		$this->assertSame(array(), $this->followUpStarts($calls));
	}

	public function testAFailoverWhileALoopRunsStartsNoSecondLoopAndTheLoopTakesItsVhid(): void {
		$run = fopen("{$this->runDir}/awsha.followup.run.lock", 'c');
		$this->assertTrue(flock($run, LOCK_EX | LOCK_NB), 'this test plays the running loop');
		try {
			$this->scenario(array('failover' => array('rc' => 0, 'stdout' => self::fixture('failover-ok')),
			    'failover 2@ena1' => array('rc' => 0, 'stdout' => array_merge(self::fixture('failover-ok'), array('actions' => array(
			    array('vhid' => 'lan@2', 'kind' => 'ip', 'resource' => 'eni-0bb22222222222222', 'target' => '10.0.2.10', 'status' => 'changed', 'ms' => 9)))))));
			[, , , $first] = $this->runWrapper(array('failover', '1@ena0'));
			[, , , $second] = $this->runWrapper(array('failover', '2@ena1'));
		} finally {
			flock($run, LOCK_UN);
			fclose($run);
		}
		$this->assertSame(array(), $this->followUpStarts($first));
		$this->assertSame(array(), $this->followUpStarts($second));
		$this->assertSame(array('wan@1', 'lan@2'), $this->followed(), 'both VHIDs for the one loop');
	}

	public function testCanonicalVhidsFromEveryFormTheCommandLineTakes(): void {
		foreach (array('1@ena0' => 'wan@1', 'wan@1' => 'wan@1', 'WAN@1' => 'wan@1', 'ena0@1' => 'wan@1', 'DMZ@7' => 'opt1@7',
		    '_vip65de65ceb0448' => 'lan@2', '$2@ena1' => 'lan@2', '9@ena9' => '9@ena9') as $form => $canonical) {
			$this->assertSame($canonical, awsha_canonical_vhid($form), $form);
		}
	}

	/* ---------------- the loop ---------------- */

	private function follow(string ...$vhids): void {
		$state = array();
		foreach ($vhids as $vhid) {
			$state[$vhid] = array('since' => microtime(true), 'until' => microtime(true) + 20, 'quiet' => 0, 'runs' => 0);
		}
		file_put_contents("{$this->runDir}/awsha.followup.json", json_encode(array('version' => 1, 'vhids' => $state)));
	}

	public function testTheLoopRepairsThenStopsWhenInSyncOnThreeRunsInARow(): void {
		$this->follow('wan@1');
		$this->scenario(array('reconcile' => array('sequence' => array(
		    array('rc' => 1, 'stdout' => self::reconcile('failed')),
		    array('rc' => 0, 'stdout' => self::reconcile('changed')),
		    array('rc' => 0, 'stdout' => self::reconcile('unchanged')),
		))));
		$started = microtime(true);
		[$rc, , $err, $calls] = $this->runWrapper(array('--follow-up'), self::FAST);
		$this->assertSame(0, $rc, $err);
		$this->assertLessThan(10, microtime(true) - $started);
		$this->assertCount(5, $this->reconcileRuns(), 'failed, repaired, then in sync three times');
		$this->assertSame(array('--json', 'reconcile'), $this->reconcileRuns()[0]['argv'], 'a whole reconcile: it takes no VHID');
		$lines = self::followUpLines($calls);
		$this->assertCount(2, $lines);
		$this->assertSame(array('awsha', LOG_INFO), array_slice($lines[0], 0, 2));
		$this->assertStringContainsString('follow-up reconciles of wan@1 after its failover: one every 0.1 s, for at most 20 s', $lines[0][2]);
		$this->assertSame(array('awsha', LOG_INFO), array_slice($lines[1], 0, 2));
		$this->assertMatchesRegularExpression('/^follow-up reconciles of wan@1 ended after 5 runs, \d+ s after its failover: in sync on 3 runs in a row$/', $lines[1][2]);
		$this->assertSame(array(), $this->followed());
		$this->assertFileDoesNotExist("{$this->runDir}/awsha.followup.pid");
		/* Each follow-up is a wrapper run: the failure was filed, then resolved. */
		$this->assertCount(2, self::callsOf($calls, 'file_notice'));
	}

	public function testTheLoopStopsAtOnceWhenThisNodeIsNoLongerMaster(): void {
		$this->follow('wan@1');
		$this->scenario(array('reconcile' => array('rc' => 0, 'stdout' => self::reconcile('unchanged', 'BACKUP'))));
		[$rc, , , $calls] = $this->runWrapper(array('--follow-up'), self::FAST);
		$this->assertSame(0, $rc);
		$this->assertCount(1, $this->reconcileRuns());
		$this->assertStringEndsWith('this node is BACKUP for wan@1 now', self::followUpLines($calls)[1][2]);
	}

	public function testTheLoopStopsWhenReconcileChecksNothing(): void {
		$this->follow('wan@1');
		$this->scenario(array('reconcile' => array('rc' => 0, 'stdout' => array('command' => 'reconcile', 'ok' => true, 'actions' => array(),
		    'split_brain' => array(), 'notices' => array()))));
		[, , , $calls] = $this->runWrapper(array('--follow-up'), self::FAST);
		$this->assertCount(1, $this->reconcileRuns());
		$this->assertStringEndsWith('reconcile checks nothing (is Reconcile switched off?)', self::followUpLines($calls)[1][2]);
	}

	public function testTheLoopIsBoundedByItsWindowWhateverHappens(): void {
		$this->follow('wan@1');
		$this->scenario(array('reconcile' => array('rc' => 1, 'stdout' => self::reconcile('failed'))));
		$state = json_decode(file_get_contents("{$this->runDir}/awsha.followup.json"), true);
		$state['vhids']['wan@1']['until'] = microtime(true) + 1.5;
		file_put_contents("{$this->runDir}/awsha.followup.json", json_encode($state));
		$started = microtime(true);
		[$rc, , , $calls] = $this->runWrapper(array('--follow-up'), self::FAST);
		$elapsed = microtime(true) - $started;
		$this->assertSame(0, $rc);
		$this->assertGreaterThan(1.4, $elapsed);
		$this->assertLessThan(5, $elapsed);
		$last = self::followUpLines($calls)[1];
		$this->assertSame(LOG_NOTICE, $last[1], 'still not in sync at the end: said at notice');
		$this->assertStringContainsString('still not in sync at the end of its window', $last[2]);
		$this->assertStringContainsString('the reconcile job carries on', $last[2]);
	}

	public function testTheLoopKeepsGoingUntilTheSettleTimeWhenInSyncAtOnce(): void {
		/* A failover of the peer that raced this one can still land: no early stop before the settle time. */
		$this->follow('wan@1');
		$this->scenario(array('reconcile' => array('rc' => 0, 'stdout' => self::reconcile('unchanged'))));
		$started = microtime(true);
		$this->runWrapper(array('--follow-up'), array_merge(self::FAST, array('AWSHA_FOLLOWUP_SETTLE' => '1.5')));
		$this->assertGreaterThan(1.4, microtime(true) - $started);
		$this->assertGreaterThan(3, count($this->reconcileRuns()));
	}

	public function testASkippedOrSplitBrainRunIsNotInSync(): void {
		foreach (array('skipped', 'deferred', 'failed', 'changed', 'planned') as $status) {
			$this->assertSame('busy', awsha_followup_judge('wan@1', self::reconcile($status))[0], $status);
		}
		$report = self::reconcile('unchanged');
		$this->assertSame('quiet', awsha_followup_judge('wan@1', $report)[0]);
		$report['split_brain'] = array(array('vhid' => 'wan@1', 'resource' => 'rtb-05ed6e7c46531c6c3', 'resolution' => 'deferred'));
		$this->assertSame('busy', awsha_followup_judge('wan@1', $report)[0]);
		$this->assertSame('busy', awsha_followup_judge('wan@1', null)[0], 'no report: nothing to judge by');
		$this->assertSame('busy', awsha_followup_judge('wan@1', array('command' => 'reconcile', 'ok' => false, 'error' => 'IMDS'))[0]);
		$this->assertSame(array('stop', 'no awsha row names opt1@3'), awsha_followup_judge('opt1@3', self::reconcile('unchanged')));
	}

	public function testTwoLoopsStartedTogetherMakeOne(): void {
		$this->follow('wan@1');
		$this->scenario(array('reconcile' => array('rc' => 0, 'stdout' => self::reconcile('unchanged'), 'sleep' => 0.3)));
		$env = array_merge(getenv(), self::FAST);
		$procs = array();
		foreach (array(1, 2, 3) as $n) {
			$procs[] = proc_open(array(PHP_BINARY, AWSHA_WRAPPER, '--follow-up'), array(0 => array('file', '/dev/null', 'r'),
			    1 => array('file', '/dev/null', 'w'), 2 => array('file', "{$this->tmp}/err{$n}", 'w')), $pipes, $this->tmp, $env);
		}
		foreach ($procs as $proc) {
			$this->assertSame(0, proc_close($proc));
		}
		$this->assertCount(3, $this->reconcileRuns(), 'one loop ran (three quiet runs); the others ended at once');
	}

	public function testAFailoverDuringTheLoopRenewsItsVhidAndStartsNoSecondLoop(): void {
		$this->follow('wan@1');
		$this->scenario(array(
		    'reconcile' => array('rc' => 0, 'stdout' => self::reconcile('unchanged'), 'sleep' => 0.2),
		    'failover' => array('rc' => 0, 'stdout' => self::fixture('failover-ok'))));
		$env = array_merge(getenv(), self::FAST, array('AWSHA_STUB_LOG' => "{$this->tmp}/loop.log"));
		$loop = proc_open(array(PHP_BINARY, AWSHA_WRAPPER, '--follow-up'), array(0 => array('file', '/dev/null', 'r'),
		    1 => array('file', '/dev/null', 'w'), 2 => array('file', "{$this->tmp}/loop.err", 'w')), $pipes, $this->tmp, $env);
		usleep(400000);
		[, , , $calls] = $this->runWrapper(array('failover', '1@ena0'));
		$this->assertSame(array(), $this->followUpStarts($calls), 'the running loop takes it');
		$this->assertSame(0, proc_close($loop));
		$lines = self::followUpLines(self::readStubLog("{$this->tmp}/loop.log"));
		$this->assertCount(3, $lines, 'announced again after the new failover, then ended once');
		$this->assertStringContainsString('ended after 3 runs', $lines[2][2], 'three quiet runs counted from the new failover');
		$this->assertGreaterThanOrEqual(4, count($this->reconcileRuns()));
	}

	/* ---------------- the CARP hook stays instant ---------------- */

	public function testTheCarpHookReturnsAtOnceWhileTheFailoverAndItsFollowUpsRunInTheBackground(): void {
		$this->scenario(array(
		    'failover' => array('rc' => 0, 'stdout' => self::fixture('failover-ok'), 'sleep' => 1),
		    'reconcile' => array('rc' => 0, 'stdout' => self::reconcile('unchanged'))));
		foreach (self::FAST as $name => $value) {
			putenv("{$name}={$value}");
		}
		putenv('AWSHA_STUB_EXEC_BG=1');
		$started = microtime(true);
		$this->assertNull(awsha_plugin_carp(array('type' => 'carp', 'event' => 'rc.carpmaster', 'interface' => '1@ena0')));
		$this->assertLessThan(0.5, microtime(true) - $started, 'rc.carpmaster must not wait for the failover');
		/* The chain runs on its own: failover, then three quiet follow-ups. */
		for ($i = 0; $i < 100 && (count($this->reconcileRuns()) < 3 || is_file("{$this->runDir}/awsha.followup.pid")); $i++) {
			usleep(100000);
		}
		$this->assertCount(3, $this->reconcileRuns());
		$this->assertFileDoesNotExist("{$this->runDir}/awsha.followup.pid", 'the loop ended by itself');
	}
}
