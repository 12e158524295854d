<?php

use PHPUnit\Framework\TestCase;

/*
 * Base of the shim's tests: a fresh pfSense config, cleared stub records, a
 * private temporary directory, and helpers for the fake binary and for
 * checking what a shell makes of a command string.
 */
abstract class ShimTestCase extends TestCase {
	protected string $tmp;
	protected string $fakeLog;
	protected string $scenarioFile;
	protected string $runDir;
	protected string $noticesFile;
	protected string $minicronLog;
	private string $cwd;

	protected function setUp(): void {
		$this->tmp = sys_get_temp_dir() . '/awsha-shim-test-' . getmypid() . '-' . bin2hex(random_bytes(4));
		mkdir($this->tmp, 0700);
		/* Every command of a test runs here: a canary an injection creates stays in sight. */
		$this->cwd = getcwd();
		chdir($this->tmp);
		$this->fakeLog = "{$this->tmp}/fake-awsha.log";
		$this->scenarioFile = "{$this->tmp}/scenario.json";
		$this->scenario(array());
		putenv("AWSHA_FAKE_LOG={$this->fakeLog}");
		putenv("AWSHA_FAKE_SCENARIO={$this->scenarioFile}");
		/* The run directory (lock files, notice state, the job's pidfile) and pfSense's notice queue. */
		$this->runDir = "{$this->tmp}/run";
		mkdir($this->runDir, 0700);
		putenv("AWSHA_RUN_DIR={$this->runDir}");
		$this->noticesFile = "{$this->tmp}/notices.serial.json";
		putenv("AWSHA_STUB_NOTICES={$this->noticesFile}");
		$this->minicronLog = "{$this->tmp}/minicron.pids";
		putenv('AWSHA_MINICRON=' . AWSHA_FAKE_MINICRON);
		putenv("AWSHA_FAKE_MINICRON_LOG={$this->minicronLog}");
		$GLOBALS['__stub_calls'] = array();
		unset($GLOBALS['__stub_pid_running'], $GLOBALS['__stub_profile'], $GLOBALS['__stub_peer'], $GLOBALS['__stub_peer_error'],
		    $GLOBALS['__stub_node'], $GLOBALS['__stub_syslog_ident'], $GLOBALS['__stub_written_configs']);
		$GLOBALS['__stub_exec'] = false;
		$GLOBALS['__stub_exec_bg'] = false;
		$GLOBALS['__stub_booting'] = false;
		$GLOBALS['__stub_mwexec_rc'] = 0;
		unset($GLOBALS['awsha_gui_interfaces']);
		$GLOBALS['config'] = self::baseConfig();
	}

	protected function tearDown(): void {
		/* Every fake minicron this test started (and only those) is stopped. */
		foreach ($this->minicronPids() as $pid) {
			if (posix_kill($pid, 0)) {
				posix_kill($pid, SIGKILL);
			}
		}
		chdir($this->cwd);
		foreach (array('AWSHA_FAKE_LOG', 'AWSHA_FAKE_SCENARIO', 'AWSHA_RUN_DIR', 'AWSHA_STUB_NOTICES', 'AWSHA_MINICRON',
		    'AWSHA_FAKE_MINICRON_LOG') as $name) {
			putenv($name);
		}
		self::removeTree($this->tmp);
	}

	/* The pids of the fake minicron daemons started in this test. */
	protected function minicronPids(): array {
		if (!is_file($this->minicronLog)) {
			return array();
		}
		return array_map('intval', array_filter(explode("\n", file_get_contents($this->minicronLog)), 'strlen'));
	}

	/* Those still running (a zombie is not running: pfSense's init reaps it). */
	protected function liveMinicrons(): array {
		return array_values(array_filter($this->minicronPids(), 'awsha_stub_alive'));
	}

	/* What went to syslog: [[ident, priority, message], ...], from stub records. */
	protected static function syslogLines(array $calls): array {
		return array_map(function ($a) {
			return array($a[0], $a[1], $a[2]);
		}, self::callsOf($calls, 'syslog'));
	}

	/* What this process sent to syslog under the program name awsha: the messages. */
	protected function awshaLines(): array {
		return array_values(array_map(function ($l) {
			return $l[2];
		}, array_filter(self::syslogLines($GLOBALS['__stub_calls']), function ($l) {
			return $l[0] === 'awsha';
		})));
	}

	/* The notice queue as the stub of file_notice() left it (pfSense's notices.serial). */
	protected function noticeQueue(): array {
		return is_file($this->noticesFile) ? (json_decode(file_get_contents($this->noticesFile), true) ?: array()) : array();
	}

	/* Two ENI-backed interfaces and three CARP VIPs (one on an interface without an ENI). */
	public static function baseConfig(): array {
		return array(
			'version' => '24.5',
			'interfaces' => array(
				'wan' => array('if' => 'ena0', 'descr' => 'WAN', 'enable' => ''),
				'lan' => array('if' => 'ena1', 'descr' => 'LAN', 'enable' => ''),
				'opt1' => array('if' => 'ena2', 'descr' => 'DMZ', 'enable' => ''),
			),
			'virtualip' => array('vip' => array(
				array('mode' => 'carp', 'interface' => 'wan', 'vhid' => '1', 'advskew' => '0', 'advbase' => '1',
				    'uniqid' => '65de65ceb0447', 'descr' => 'WAN VIP', 'type' => 'single', 'subnet_bits' => '32', 'subnet' => '10.0.1.10'),
				array('mode' => 'carp', 'interface' => 'lan', 'vhid' => '2', 'advskew' => '0', 'advbase' => '1',
				    'uniqid' => '65de65ceb0448', 'descr' => 'LAN VIP', 'type' => 'single', 'subnet_bits' => '32', 'subnet' => '10.0.2.10'),
				array('mode' => 'ipalias', 'interface' => '_vip65de65ceb0447', 'uniqid' => '65de65ceb0449',
				    'descr' => 'alias', 'type' => 'single', 'subnet_bits' => '32', 'subnet' => '10.0.1.20'),
			)),
		);
	}

	/* What "awsha --json interfaces" prints on this node by default. */
	public static function interfacesReport(array $override = array()): array {
		return array_merge(array(
			'command' => 'interfaces', 'ok' => true, 'instance' => 'i-0123456789abcdef0',
			'interfaces' => array(
				array('interface' => 'wan', 'device' => 'ena0', 'descr' => 'WAN', 'eni' => 'eni-0aa11111111111111',
				    'mac' => '0a:00:00:00:00:01', 'subnet_id' => 'subnet-01', 'subnet_cidr' => '10.0.1.0/24',
				    'ipv4s' => array('10.0.1.11', '10.0.1.10')),
				array('interface' => 'lan', 'device' => 'ena1', 'descr' => 'LAN', 'eni' => 'eni-0bb22222222222222',
				    'mac' => '0a:00:00:00:00:02', 'subnet_id' => 'subnet-02', 'subnet_cidr' => '10.0.2.0/24',
				    'ipv4s' => array('10.0.2.11')),
			),
		), $override);
	}

	/* The fake binary's answers for this test (see fixtures/fake-awsha). */
	protected function scenario(array $scenario): void {
		file_put_contents($this->scenarioFile, json_encode($scenario));
	}

	/* Every run of the fake binary so far: [['argv' => [...], 'config' => ...], ...]. */
	protected function fakeRuns(): array {
		if (!is_file($this->fakeLog)) {
			return array();
		}
		return array_map(function ($line) {
			return json_decode($line, true);
		}, array_filter(explode("\n", file_get_contents($this->fakeLog)), 'strlen'));
	}

	/* The recorded calls of one stubbed pfSense function: a list of argument lists (on $node: null = this node, 'peer'). */
	protected function stubCalls(string $function, $node = false): array {
		$calls = array();
		foreach ($GLOBALS['__stub_calls'] as $call) {
			if ($call['fn'] === $function && ($node === false || ($call['node'] ?? null) === $node)) {
				$calls[] = $call['args'];
			}
		}
		return $calls;
	}

	/*
	 * The words /bin/sh makes of a command string: runs "printf '%s\0' <command>"
	 * in an empty directory and returns what printf printed. A command that
	 * escapes its words badly shows up as different words (or a canary file
	 * created by the injected command).
	 */
	protected function shellWords(string $command): array {
		$dir = "{$this->tmp}/sh";
		@mkdir($dir);
		list($rc, $out, $err) = self::runProgram(array('/bin/sh', '-c', "printf '%s\\0' " . $command), $dir);
		$this->assertSame(0, $rc, "sh failed on {$command}: {$err}");
		$this->assertSame(array(), array_values(array_diff(scandir($dir), array('.', '..'))), "the command created files: {$command}");
		return explode("\0", substr($out, 0, -1));
	}

	/*
	 * Runs `$argv` in `$cwd` (stdin /dev/null) and returns [rc, stdout, stderr]. The two pipes are
	 * read together: a program that fills one while we wait on the other would hang the test. A
	 * program still running after $timeout seconds is killed: rc 124, and stderr says so.
	 */
	protected static function runProgram(array $argv, string $cwd, ?array $env = null, float $timeout = 120.0): array {
		$proc = proc_open($argv, array(0 => array('file', '/dev/null', 'r'), 1 => array('pipe', 'w'), 2 => array('pipe', 'w')), $pipes, $cwd, $env);
		$output = array(1 => '', 2 => '');
		$open = array(1 => $pipes[1], 2 => $pipes[2]);
		foreach ($open as $pipe) {
			stream_set_blocking($pipe, false);
		}
		$until = microtime(true) + $timeout;
		while ($open) {
			$left = $until - microtime(true);
			if ($left <= 0) {
				// A hung child must not hang the suite: kill it and say so.
				proc_terminate($proc, 9);
				foreach ($open as $pipe) {
					fclose($pipe);
				}
				proc_close($proc);
				return array(124, $output[1], $output[2] . "\n(runProgram: killed after {$timeout} s: " . implode(' ', $argv) . ')');
			}
			$read = array_values($open);
			$write = $except = null;
			if (stream_select($read, $write, $except, (int)$left, (int)(($left - (int)$left) * 1e6)) === false) {
				break;
			}
			foreach ($read as $pipe) {
				$n = array_search($pipe, $open, true);
				$chunk = fread($pipe, 65536);
				if ($chunk === false || ($chunk === '' && feof($pipe))) {
					fclose($pipe);
					unset($open[$n]);
				} else {
					$output[$n] .= $chunk;
				}
			}
		}
		foreach ($open as $pipe) {
			fclose($pipe);
		}
		return array(proc_close($proc), $output[1], $output[2]);
	}

	/* Runs the wrapper as a program, as minicron and mwexec_bg do; returns [rc, stdout, stderr, stub calls]. */
	protected function runWrapper(array $args, array $env = array()): array {
		$stubLog = "{$this->tmp}/stubs.log";
		@unlink($stubLog);
		$environment = array_merge(getenv(), array('AWSHA_STUB_LOG' => $stubLog), $env);
		$environment = array_filter($environment, function ($v) {
			return $v !== null;
		});
		list($rc, $out, $err) = self::runProgram(array_merge(array(PHP_BINARY, AWSHA_WRAPPER), $args), $this->tmp, $environment);
		return array($rc, $out, $err, self::readStubLog($stubLog));
	}

	/*
	 * Runs a page or widget of the package (relative to /usr/local/www) for
	 * one request, as php-fpm would (fixtures/run-page.php), with this
	 * test's config and fake binary: [rc, output, stderr, headers, stub calls].
	 */
	protected function runPage(string $page, array $request = array(), array $env = array()): array {
		$headers = "{$this->tmp}/page-headers";
		$stubLog = "{$this->tmp}/page-stubs.log";
		$config = "{$this->tmp}/page-config.json";
		@unlink($headers);
		@unlink($stubLog);
		file_put_contents($config, json_encode($GLOBALS['config']));
		$environment = array_merge(getenv(), array('AWSHA_PAGE_REQUEST' => json_encode($request), 'AWSHA_PAGE_HEADERS' => $headers,
		    'AWSHA_STUB_CONFIG' => $config, 'AWSHA_STUB_LOG' => $stubLog), $env);
		list($rc, $out, $err) = self::runProgram(array(PHP_BINARY, '-d', 'disable_functions=openlog,syslog,closelog,header', AWSHA_PAGE_RUNNER, AWSHA_WWW_DIR . "/{$page}"),
		    $this->tmp, $environment);
		$sent = is_file($headers) ? explode("\n", trim(file_get_contents($headers))) : array();
		return array($rc, $out, $err, $sent, self::readStubLog($stubLog));
	}

	protected static function readStubLog(string $file): array {
		if (!is_file($file)) {
			return array();
		}
		return array_map(function ($line) {
			return json_decode($line, true);
		}, array_filter(explode("\n", file_get_contents($file)), 'strlen'));
	}

	protected static function callsOf(array $calls, string $function): array {
		return array_values(array_map(function ($c) {
			return $c['args'];
		}, array_filter($calls, function ($c) use ($function) {
			return $c['fn'] === $function;
		})));
	}

	protected static function removeTree(string $dir): void {
		if (!is_dir($dir)) {
			return;
		}
		foreach (array_diff(scandir($dir), array('.', '..')) as $entry) {
			$path = "{$dir}/{$entry}";
			is_dir($path) && !is_link($path) ? self::removeTree($path) : unlink($path);
		}
		rmdir($dir);
	}

	/* Values that break a carelessly built shell command. */
	public static function hostileValues(): array {
		return array(
			'semicolon' => array('1@ena0; touch pwned'),
			'command substitution' => array('$(touch pwned)'),
			'backticks' => array('`touch pwned`'),
			'single quotes' => array("1@ena0' ; touch pwned ; echo '"),
			'double quotes' => array('1@ena0" ; touch pwned ; echo "'),
			'newline' => array("1@ena0\ntouch pwned"),
			'and-and and pipe' => array('1@ena0 && touch pwned | cat'),
			'glob and variables' => array('* $HOME ${PATH} ~'),
			'backslashes' => array('\\\' \\"'),
		);
	}
}
