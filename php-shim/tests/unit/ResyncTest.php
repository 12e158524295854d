<?php

final class ResyncTest extends ShimTestCase {
	private function setEnable(?string $value): void {
		$GLOBALS['config']['installedpackages']['awsha']['config'] = array(
		    $value === null ? array('endpoint' => '', 'region' => '') : array('enable' => $value, 'endpoint' => '', 'region' => ''));
	}

	private function assertMinicronStarted(): void {
		$calls = $this->stubCalls('mwexec');
		$this->assertCount(1, $calls);
		$words = $this->shellWords($calls[0][0]);
		$this->assertSame(array('/usr/local/bin/minicron', '60', '/var/run/awsha_reconcile.pid'), array_slice($words, 0, 3));
		$this->assertCount(4, $words, 'the job is ONE argument of minicron');
		$this->assertSame(array(AWSHA_PHP, AWSHA_RUN, 'reconcile'), $this->shellWords($words[3]));
		$this->assertSame(array(), $this->stubCalls('killbypid'));
	}

	public function testStartsWhenThereAreNoSettingsYet(): void {
		unset($GLOBALS['config']['installedpackages']);
		awsha_resync();
		$this->assertMinicronStarted();
	}

	public function testStartsWhenEnableIsAbsent(): void {
		$this->setEnable(null);
		awsha_resync();
		$this->assertMinicronStarted();
	}

	public function testStartsWhenEnabled(): void {
		foreach (array('on', 'ON') as $on) {
			$GLOBALS['__stub_calls'] = array();
			$this->setEnable($on);
			awsha_resync();
			$this->assertMinicronStarted();
		}
	}

	public function testLeavesARunningJobAlone(): void {
		$this->setEnable('on');
		$GLOBALS['__stub_pid_running'] = true;
		awsha_resync();
		$this->assertSame(array(), $this->stubCalls('mwexec'));
		$this->assertSame(array(), $this->stubCalls('killbypid'));
		$this->assertSame(array(array('/var/run/awsha_reconcile.pid')), $this->stubCalls('is_pid_running'));
	}

	public function testStopsARunningJobWhenDisabled(): void {
		$this->setEnable('');
		$GLOBALS['__stub_pid_running'] = true;
		awsha_resync();
		$this->assertSame(array(array('/var/run/awsha_reconcile.pid', 0)), $this->stubCalls('killbypid'));
		$this->assertSame(array(), $this->stubCalls('mwexec'));
	}

	public function testDisabledAndNotRunningDoesNothing(): void {
		$this->setEnable('');
		awsha_resync();
		$this->assertSame(array(), $this->stubCalls('killbypid'));
		$this->assertSame(array(), $this->stubCalls('mwexec'));
	}

	public function testDeinstallAndStopKillTheJob(): void {
		$GLOBALS['__stub_pid_running'] = true;
		awsha_deinstall();
		awsha_stop_reconcile();
		$this->assertCount(2, $this->stubCalls('killbypid'));
	}
}
