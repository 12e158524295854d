<?php

/*
 * Every value that reaches a shell goes through escapeshellarg(): hostile
 * values in the CARP event, in config rows and in the answers of the binary
 * arrive as exactly one unchanged argument, and nothing they contain runs.
 */
final class ShellEscapingTest extends ShimTestCase {
	/** @dataProvider hostileValues */
	public function testCarpInterfaceIsOneWordForTheShell(string $value): void {
		awsha_plugin_carp(array('type' => 'carp', 'event' => 'rc.carpmaster', 'interface' => $value));
		$this->assertSame(array(AWSHA_PHP, AWSHA_RUN, 'failover', $value), $this->shellWords($this->stubCalls('mwexec_bg')[0][0]));
	}

	/** @dataProvider hostileValues */
	public function testCarpInterfaceReachesAwshaUnchangedThroughTheWrapper(string $value): void {
		$this->scenario(array('failover' => array('rc' => 0, 'stdout' => array('command' => 'failover', 'ok' => true, 'actions' => array()))));
		$GLOBALS['__stub_exec_bg'] = true;
		awsha_plugin_carp(array('type' => 'carp', 'event' => 'rc.carpmaster', 'interface' => $value));
		$this->assertSame(0, $GLOBALS['__stub_exec_bg_rc'], $GLOBALS['__stub_exec_bg_stderr']);
		$this->assertSame(array('--json', 'failover', $value), $this->fakeRuns()[0]['argv']);
		$this->assertFileDoesNotExist("{$this->tmp}/pwned");
	}

	/** @dataProvider hostileValues */
	public function testWrapperArgumentsReachAwshaUnchanged(string $value): void {
		$this->scenario(array('status' => array('rc' => 0, 'stdout' => array('command' => 'status', 'ok' => true))));
		[$rc, , $err] = $this->runWrapper(array('status', $value, '--dry-run'));
		$this->assertSame(0, $rc, $err);
		$this->assertSame(array('--json', 'status', $value, '--dry-run'), $this->fakeRuns()[0]['argv']);
		$this->assertFileDoesNotExist("{$this->tmp}/pwned");
	}

	/** @dataProvider hostileValues */
	public function testSyncedRowValuesReachMapIpUnchanged(string $value): void {
		/* An interface name and an address as hostile as the peer or the binary could make them. */
		$report = self::interfacesReport();
		$report['interfaces'][0]['interface'] = $value;
		$this->scenario(array('interfaces' => array('stdout' => $report), 'map-ip' => array('answers' => array())));
		$merged = awsha_sync_merge(array('settings' => array(), 'sections' => array('awshaips' => array(
		    array('vhid' => 'wan@1', 'interface' => $value, 'ipaddr' => '10.0.9.10', 'xmlrpcsync' => 'on', 'subnet_cidr' => '10.0.9.0/24'),
		    array('vhid' => 'wan@1', 'interface' => $value, 'ipaddr' => $value, 'xmlrpcsync' => 'on', 'subnet_cidr' => '10.0.9.0/24'),
		))));
		$mapIp = array_values(array_filter($this->fakeRuns(), function ($r) {
			return in_array('map-ip', $r['argv'], true);
		}));
		$this->assertCount(1, $mapIp, 'a text that is no address is kept as sent, never given to map-ip');
		$this->assertSame(array('--deadline', '10', 'map-ip', '--interface', $value, '--from-subnet', '10.0.9.0/24', '10.0.9.10'), $mapIp[0]['argv']);
		$this->assertSame($value, $merged['installedpackages/awshaips/config'][1]['ipaddr']);
		$this->assertFileDoesNotExist("{$this->tmp}/pwned");
	}

	/** @dataProvider hostileValues */
	public function testValidatedValuesTravelInTheTemporaryConfigNotOnTheCommandLine(string $value): void {
		$this->scenario(array('validate' => array('rc' => 0, 'stdout' => array('command' => 'validate', 'ok' => true, 'problems' => array()))));
		$post = array('vhid' => 'wan@1', 'routetable' => $value, 'cidr' => '0.0.0.0/0', 'interface' => 'lan', 'xmlrpcsync' => 'on');
		$errors = array();
		awsha_validate_input('awsharoutes', $post, null, $errors);
		$run = $this->fakeRuns()[0];
		$this->assertSame('--config', $run['argv'][3]);
		$this->assertSame(array('--json', '--deadline', '5', '--config', $run['argv'][4], 'validate'), $run['argv'], 'a GUI call: a deadline of a few seconds');
		$xml = simplexml_load_string($run['config']);
		$this->assertSame(trim($value), (string)$xml->installedpackages->awsharoutes->config[0]->routetable);
	}

	/* The paths themselves are escaped too: the minicron job with hostile program paths. */
	public function testMinicronCommandIsTwoLayersOfWordsEvenWithHostilePaths(): void {
		$php = "{$this->tmp}/p h p;touch pwned";
		$run = "{$this->tmp}/run \$(touch pwned)/awsha-run";
		$minicron = "{$this->tmp}/mini`touch pwned`cron";
		$rundir = "{$this->tmp}/r'un dir";
		[$rc, $command, $err] = self::runProgram(array(PHP_BINARY, '-r', 'require "awsha.inc"; echo awsha_minicron_command();'),
		    $this->tmp, array_merge(getenv(), array('AWSHA_PHP' => $php, 'AWSHA_RUN' => $run, 'AWSHA_MINICRON' => $minicron, 'AWSHA_RUN_DIR' => $rundir)));
		$this->assertSame(0, $rc, $err);

		$outer = $this->shellWords($command);
		$this->assertSame(array($minicron, '60', "{$rundir}/awsha_reconcile.pid"), array_slice($outer, 0, 3));
		$this->assertCount(4, $outer, 'minicron runs only its third argument: the job must be one word');
		$this->assertSame(array($php, $run, 'reconcile'), $this->shellWords($outer[3]));
		$this->assertFileDoesNotExist("{$this->tmp}/pwned");
	}

	public function testBinaryPathIsEscaped(): void {
		$bin = "{$this->tmp}/a b'c;touch pwned/awsha";
		[, $command] = self::runProgram(array(PHP_BINARY, '-r', 'require "awsha.inc"; echo awsha_command(["map-ip", "--interface", "wan"]);'),
		    $this->tmp, array_merge(getenv(), array('AWSHA_BIN' => $bin)));
		$this->assertSame(array($bin, 'map-ip', '--interface', 'wan'), $this->shellWords($command));
	}
}
