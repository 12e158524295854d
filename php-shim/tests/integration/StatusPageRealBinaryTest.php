<?php

/*
 * Status > AWS High Availability and the dashboard widget with the real
 * binary's JSON (issue 15 point 3): the pages run as php-fpm runs them
 * (fixtures/run-page.php, pfSense stubbed), the binary against moto (through
 * the fault proxy), node A's IMDS emulator and fake ifconfig.
 *
 * Started by tests/integration/test_shim_status_real_binary.py, which
 * builds the scene (a failover of wan@1 on node A, lan@2 left on B; hostile
 * interface and VIP descriptions in config.xml), and passes:
 *   AWSHA_TEST_SERVERS=1, AWSHA_BIN (kept as AWSHA_TEST_REAL_BIN by the
 *   bootstrap), the node's environment (AWSHA_CONFIG, AWSHA_IFCONFIG,
 *   endpoints), AWSHA_TEST_RUN_DIR (the node's run directory: locks,
 *   takeover markers, the history), AWSHA_TEST_PHP_CONFIG (the same config
 *   as pfSense's PHP sees it, JSON), AWSHA_TEST_EXPECT (JSON: VHID → the
 *   widget's colour). In a plain run-tests.sh run it is skipped.
 */
final class StatusPageRealBinaryTest extends ShimTestCase {
	private const TOKEN = 'sid:0123456789abcdef0123456789abcdef01234567,1764633600';
	private string $real;

	protected function setUp(): void {
		parent::setUp();
		$real = getenv('AWSHA_TEST_REAL_BIN');
		if (getenv('AWSHA_TEST_SERVERS') !== '1' || $real === false || !is_executable($real)) {
			$this->markTestSkipped('needs the servers: run by tests/integration/test_shim_status_real_binary.py (make test)');
		}
		$this->real = $real;
		$GLOBALS['config'] = json_decode(file_get_contents(getenv('AWSHA_TEST_PHP_CONFIG')), true);
		putenv('AWSHA_RUN_DIR=' . getenv('AWSHA_TEST_RUN_DIR'));
		$this->runDir = getenv('AWSHA_TEST_RUN_DIR');
	}

	private function page(string $page, array $request = array(), array $env = array()): array {
		return $this->runPage($page, $request, array_merge(array('AWSHA_BIN' => $this->real), $env));
	}

	private static function tableRows(string $html, string $id): array {
		if (!preg_match('#<table[^>]*id="' . preg_quote($id, '#') . '"[^>]*>(.*?)</table>#s', $html, $m)) {
			return array();
		}
		preg_match_all('#<tr[^>]*>.*?</tr>#s', $m[1], $rows);
		return array_slice($rows[0], 1);
	}

	private function status(): array {
		$report = json_decode(shell_exec(escapeshellarg($this->real) . ' --json status'), true);
		$this->assertIsArray($report);
		return $report;
	}

	private function assertEscaped(string $out): void {
		$this->assertStringNotContainsString('<script>alert', $out);
		$this->assertStringNotContainsString('"><script', $out);
	}

	public function testPageAndWidgetShowTheRealStatus(): void {
		$expect = json_decode(getenv('AWSHA_TEST_EXPECT'), true);
		$report = $this->status();
		[$rc, $out, $err] = $this->page('status_awsha.php');
		$this->assertSame(0, $rc, $err);
		$this->assertStringNotContainsString('awsha status failed', $out, $out);
		$this->assertEscaped($out);
		$this->assertStringContainsString('&lt;SCRIPT&gt;ALERT(&quot;WAN&quot;)&lt;/SCRIPT&gt;@1', $out, 'the interface description, escaped');
		$this->assertStringContainsString('&quot;&gt;&lt;script&gt;alert(&#039;vip&#039;)&lt;/script&gt;', $out, 'the VIP description, escaped');

		$rows = self::tableRows($out, 'awsha-vhids');
		$this->assertCount(count($expect), $rows);
		foreach ($rows as $row) {
			$this->assertMatchesRegularExpression('#data-vhid="([^"]+)" class="awsha-(\w+)"#', $row);
			preg_match('#data-vhid="([^"]+)" class="awsha-(\w+)"#', $row, $m);
			$this->assertSame($expect[$m[1]], $m[2], "{$m[1]}: {$row}");
		}
		$this->assertCount(count($report['actions']), self::tableRows($out, 'awsha-actions'), 'one row per resource of the report');
		foreach ($report['actions'] as $a) {
			$this->assertStringContainsString('<code>' . htmlspecialchars($a['resource']) . '</code>', $out);
			if (isset($a['actual'])) {
				$this->assertStringContainsString(htmlspecialchars($a['actual']), $out);
			}
		}
		$this->assertStringContainsString(htmlspecialchars($report['instance']) . ' (this node)', $out, 'the last writer from the tags');

		[$rc, $widget] = $this->page('widgets/widgets/awsha.widget.php',
		    array('method' => 'POST', 'post' => array('ajax' => 'ajax', 'awsha' => 'status', '__csrf_magic' => self::TOKEN)));
		$this->assertSame(0, $rc);
		$this->assertEscaped($widget);
		preg_match_all('#<tr class="awsha-(\w+)" data-vhid="([^"]+)">#', $widget, $m, PREG_SET_ORDER);
		$lines = array();
		foreach ($m as $line) {
			$lines[$line[2]] = $line[1];
		}
		$this->assertSame($expect, $lines);
	}

	public function testReconcileNowRepairsAndShowsTheResult(): void {
		[, , , $headers] = $this->page('status_awsha.php', array('method' => 'POST', 'post' => array('reconcile' => 'now', '__csrf_magic' => self::TOKEN)),
		    array('AWSHA_STUB_EXEC_BG' => '1'));
		$this->assertMatchesRegularExpression('#^Location: status_awsha\.php\?reconcile=[0-9a-f]{16}$#', $headers[0] ?? '');
		$id = substr($headers[0], -16);
		$done = false;
		for ($i = 0; $i < 300 && !$done; $i++) {
			usleep(100000);
			[, $poll] = $this->page('status_awsha.php', array('get' => array('reconcile' => $id, 'poll' => '1')));
			$done = json_decode($poll, true)['done'] ?? false;
		}
		$this->assertTrue($done, 'the reconcile ended within 30 s');
		[, $out] = $this->page('status_awsha.php', array('get' => array('reconcile' => $id)));
		$this->assertMatchesRegularExpression('#Reconcile started at \d\d:\d\d:\d\d finished after [^,]+, exit 0: \d+ changed#', $out);
		$this->assertStringContainsString('alert alert-warning', $out, 'it repaired lan@2');
		$this->assertStringContainsString(': changed</li>', $out);
		foreach (self::tableRows($out, 'awsha-vhids') as $row) {
			$this->assertStringContainsString('class="awsha-green"', $row, 'everything in sync now');
		}
	}

	/* Needs docs/contracts.md §13 in the binary: "last_failover" in status, "awsha history",
	 * "timeline". */
	public function testLastFailoverAndRecentRunsFromTheRealBinary(): void {
		$report = $this->status();
		$wan = array_values(array_filter($report['vhids'], function ($v) {
			return $v['vhid'] === 'wan@1';
		}))[0];
		$this->assertArrayHasKey('last_failover', $wan, 'awsha status --json: vhids[].last_failover (docs/contracts.md §4.3, issue 15)');
		[, $out] = $this->page('status_awsha.php');
		$rows = self::tableRows($out, 'awsha-vhids');
		$wan_row = array_values(array_filter($rows, function ($r) {
			return str_contains($r, 'data-vhid="wan@1"');
		}))[0];
		$this->assertMatchesRegularExpression('#<td class="text-success">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+ \([^)]*\), \d+ ms, 4 changed</td>#', $wan_row);
		$this->assertStringNotContainsString('The history cannot be read', $out);
		$history = self::tableRows($out, 'awsha-history');
		$this->assertNotEmpty($history);
		$failover = array_values(array_filter($history, function ($r) {
			return str_contains($r, '<td>failover</td>');
		}));
		$this->assertNotEmpty($failover, 'the failover is among the recent runs');
		$this->assertStringContainsString('<details><summary>', $failover[0], 'with its timeline');
		$this->assertStringContainsString('config read', $failover[0]);
	}
}
