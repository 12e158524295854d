<?php

/*
 * The reconcile job and its service (issue 12 point 4), with a fake minicron
 * that keeps the real one's timing (fixtures/fake-minicron): the program
 * returns at once and its daemon writes the pidfile later; on SIGTERM it
 * takes a while to exit. pfSense's side: rc.start_packages, start_service(),
 * stop_service(), restart_service() as modelled in the stubs.
 */
final class ServiceTest extends ShimTestCase {
	protected function setUp(): void {
		parent::setUp();
		$GLOBALS['__stub_exec'] = true;
		awsha_stub_install_package();
	}

	private function setEnable(?string $value): void {
		$GLOBALS['config']['installedpackages']['awsha']['config'] = array(
		    $value === null ? array('endpoint' => '', 'region' => '') : array('enable' => $value, 'endpoint' => '', 'region' => ''));
	}

	private function pidfile(): string {
		return "{$this->runDir}/awsha_reconcile.pid";
	}

	/* Waits until the minicrons started so far have settled (written their pidfile, or exited). */
	private function settle(): void {
		usleep(800000);
	}

	private function assertOneJob(string $why): int {
		$live = $this->liveMinicrons();
		$this->assertCount(1, $live, $why);
		$this->assertSame($live[0], (int)trim(file_get_contents($this->pidfile())), 'the pidfile names the job');
		return $live[0];
	}

	public function testBootStartsOneJob(): void {
		/* rc.start_packages: sync_package() (the resync command), then start_service(internal name, true). */
		awsha_stub_rc_start_packages();
		$this->settle();
		$this->assertOneJob('the resync started it; start_service() must not start a second');
		$this->assertSame(array(array('awsha', true)), $this->stubCalls('start_service'));
	}

	public function testTheServiceStartsOnSync(): void {
		$services = config_get_path('installedpackages/service');
		$this->assertCount(1, $services);
		$this->assertArrayHasKey('starts_on_sync', $services[0], 'rc.start_packages then leaves the start to sync_package()');
	}

	public function testTwoStartsRightAfterEachOtherStartOneJob(): void {
		/* Without <starts_on_sync/> too: a start right after a start must see the first job. */
		awsha_apply_enable();
		start_service('awsha');
		$this->settle();
		$this->assertOneJob('the second start came before the first job had written its pidfile');
	}

	public function testConcurrentStartsFromTwoProcessesStartOneJob(): void {
		$code = 'require "config.inc"; require "util.inc"; require "service-utils.inc"; require "awsha.inc"; awsha_apply_enable();';
		$env = array_merge(getenv(), array('AWSHA_STUB_EXEC' => '1'));
		$procs = array();
		foreach (array(1, 2, 3) as $n) {
			$procs[] = proc_open(array(PHP_BINARY, '-r', $code), array(0 => array('file', '/dev/null', 'r'), 1 => array('file', "{$this->tmp}/out{$n}", 'w'),
			    2 => array('file', "{$this->tmp}/err{$n}", 'w')), $pipes, $this->tmp, $env);
		}
		foreach ($procs as $n => $proc) {
			$this->assertSame(0, proc_close($proc), (string)@file_get_contents("{$this->tmp}/err" . ($n + 1)));
		}
		$this->settle();
		$this->assertOneJob('a save, the service page and a sync at once');
	}

	public function testRestartFromStatusServicesLeavesTheJobRunning(): void {
		awsha_apply_enable();
		$this->settle();
		$old = $this->assertOneJob('started');
		restart_service('awsha');
		$this->settle();
		$new = $this->assertOneJob('restart must not leave the job stopped (the old one was still exiting at the start)');
		$this->assertNotSame($old, $new, 'a new job');
	}

	public function testStopWaitsUntilTheJobIsGoneAndRemovesItsPidfile(): void {
		awsha_apply_enable();
		$this->settle();
		$this->assertOneJob('started');
		stop_service('awsha');
		$this->assertSame(array(), $this->liveMinicrons(), 'gone when the stop returns');
		$this->assertFileDoesNotExist($this->pidfile(), 'minicron leaves its pidfile behind; a recycled pid must not look like the job');
		$this->assertFalse(is_service_running('awsha'));
	}

	public function testSavingAgainLeavesARunningJobAlone(): void {
		awsha_resync();
		awsha_resync();
		$this->settle();
		$this->assertOneJob('one job');
		$this->assertCount(1, $this->stubCalls('mwexec'));
	}

	/* minicron's first run waits 60 s: a node that boots as MASTER must act at once (issue 15 point 1). */
	public function testStartingTheJobStartsOneReconcileAtOnceInTheBackground(): void {
		awsha_stub_rc_start_packages();
		$this->settle();
		$bg = $this->stubCalls('mwexec_bg');
		$this->assertCount(1, $bg, 'one reconcile when the job starts');
		$this->assertSame(array(AWSHA_PHP, AWSHA_RUN, 'reconcile'), $this->shellWords($bg[0][0]), 'through the wrapper: notices, logging');
		awsha_resync();
		start_service('awsha');
		$this->assertCount(1, $this->stubCalls('mwexec_bg'), 'a job that already runs starts none');
		$this->setEnable('');
		awsha_resync();
		$this->assertCount(1, $this->stubCalls('mwexec_bg'), 'nor does stopping it');
		$this->setEnable('on');
		awsha_resync();
		$this->assertCount(2, $this->stubCalls('mwexec_bg'), 'switched on again: it acts at once');
	}

	public function testStartsWhenThereAreNoSettingsOrEnableIsAbsentOrOn(): void {
		foreach (array('none', null, 'on', 'ON') as $enable) {
			if ($enable === 'none') {
				unset($GLOBALS['config']['installedpackages']['awsha']);
			} else {
				$this->setEnable($enable);
			}
			awsha_resync();
			$this->assertTrue(awsha_reconcile_running(), var_export($enable, true));
			awsha_stop_reconcile();
		}
	}

	public function testDisablingStopsTheJob(): void {
		awsha_resync();
		$this->assertTrue(awsha_reconcile_running());
		$this->setEnable('');
		awsha_resync();
		$this->assertSame(array(), $this->liveMinicrons());
		$this->assertFalse(awsha_reconcile_running());
		start_service('awsha');
		$this->assertFalse(awsha_reconcile_running(), 'Start in Status > Services follows the Reconcile setting');
	}

	public function testDeinstallStopsTheJob(): void {
		awsha_resync();
		awsha_deinstall();
		$this->assertSame(array(), $this->liveMinicrons());
	}

	public function testTheJobIsOneMinicronArgument(): void {
		awsha_resync();
		$calls = $this->stubCalls('mwexec');
		$this->assertCount(1, $calls);
		$words = $this->shellWords($calls[0][0]);
		$this->assertSame(array(AWSHA_FAKE_MINICRON, '60', $this->pidfile()), array_slice($words, 0, 3));
		$this->assertCount(4, $words, 'the job is ONE argument of minicron (it drops any further ones)');
		$this->assertSame(array(AWSHA_PHP, AWSHA_RUN, 'reconcile'), $this->shellWords($words[3]));
	}

	public function testTheDefaultsArePfSensesPaths(): void {
		putenv('AWSHA_RUN_DIR');
		putenv('AWSHA_MINICRON');
		try {
			$this->assertSame('/var/run/awsha_reconcile.pid', awsha_pidfile());
			$this->assertSame(array('/usr/local/bin/minicron', '60', '/var/run/awsha_reconcile.pid'), array_slice($this->shellWords(awsha_minicron_command()), 0, 3));
		} finally {
			putenv("AWSHA_RUN_DIR={$this->runDir}");
			putenv('AWSHA_MINICRON=' . AWSHA_FAKE_MINICRON);
		}
		$status = config_get_path('installedpackages/service/0/custom_php_service_status_command');
		$this->assertSame("is_pid_running('/var/run/awsha_reconcile.pid')", $status, 'the status needs no include: Status > Services evaluates it alone');
	}
}
