<?php

final class PluginCarpTest extends ShimTestCase {
	private static function event(string $event, string $interface = '1@ena0'): array {
		return array('type' => 'carp', 'event' => $event, 'interface' => $interface);
	}

	public function testMasterEventStartsFailoverInTheBackgroundWithTheInterfaceUnchanged(): void {
		$this->assertNull(awsha_plugin_carp(self::event('rc.carpmaster')));

		$bg = $this->stubCalls('mwexec_bg');
		$this->assertCount(1, $bg);
		$this->assertSame(array(AWSHA_PHP, AWSHA_RUN, 'failover', '1@ena0'), $this->shellWords($bg[0][0]));
		$this->assertSame(array(), $this->stubCalls('mwexec'), 'the CARP hook must not run anything in the foreground');
		$this->assertSame(array(), $this->fakeRuns(), 'the hook itself does not run awsha');
	}

	public function testBackupEventDoesNothing(): void {
		awsha_plugin_carp(self::event('rc.carpbackup'));
		$this->assertSame(array(), $this->stubCalls('mwexec_bg'));
		$this->assertSame(array(), $this->stubCalls('mwexec'));
	}

	public function testOtherOrMissingEventsDoNothing(): void {
		awsha_plugin_carp(array('type' => 'carp', 'interface' => '1@ena0'));
		awsha_plugin_carp(array('type' => 'carp', 'event' => 'RC.CARPMASTER', 'interface' => '1@ena0'));
		awsha_plugin_carp(array('type' => 'inspection'));
		awsha_plugin_carp(null);
		$this->assertSame(array(), $this->stubCalls('mwexec_bg'));
	}

	public function testMasterEventWithoutInterfaceOrWithAnOptionLikeOneIsRefusedAndLogged(): void {
		awsha_plugin_carp(array('type' => 'carp', 'event' => 'rc.carpmaster'));
		awsha_plugin_carp(self::event('rc.carpmaster', ''));
		awsha_plugin_carp(self::event('rc.carpmaster', '--config=/tmp/evil.xml'));
		$this->assertSame(array(), $this->stubCalls('mwexec_bg'));
		$this->assertCount(3, $this->awshaLines());
	}

	public function testOtherKernelFormsPassUnchanged(): void {
		awsha_plugin_carp(self::event('rc.carpmaster', '255@ena0.100'));
		$this->assertSame(array(AWSHA_PHP, AWSHA_RUN, 'failover', '255@ena0.100'), $this->shellWords($this->stubCalls('mwexec_bg')[0][0]));
	}

	/* The whole chain: hook → wrapper (a PHP program) → awsha --json failover 1@ena0. */
	public function testTheBackgroundCommandRunsTheWrapperWhichRunsAwshaFailover(): void {
		$this->scenario(array('failover' => array('rc' => 0, 'stdout' => array(
		    'command' => 'failover', 'ok' => true, 'instance' => 'i-0123456789abcdef0',
		    'actions' => array(array('vhid' => 'wan@1', 'kind' => 'ip', 'resource' => 'eni-0aa11111111111111', 'target' => '10.0.1.10', 'status' => 'changed', 'ms' => 12)),
		    'split_brain' => array(), 'notices' => array()))));
		$GLOBALS['__stub_exec_bg'] = true;

		awsha_plugin_carp(self::event('rc.carpmaster'));

		$this->assertSame(0, $GLOBALS['__stub_exec_bg_rc'], $GLOBALS['__stub_exec_bg_stderr']);
		$runs = $this->fakeRuns();
		$this->assertCount(1, $runs);
		$this->assertSame(array('--json', 'failover', '1@ena0'), $runs[0]['argv']);
	}
}
