<?php

/*
 * Status > AWS High Availability and the dashboard widget (issue 15 point
 * 3), rendered as php-fpm runs them (fixtures/run-page.php; guiconfig.inc,
 * head.inc and foot.inc are stubs, csrf-magic modelled) against fixture
 * JSON of "awsha status --json" and "awsha history --json" (the contract of
 * docs/contracts.md §4 and §13). The same pages against the real binary's JSON:
 * tests/integration/StatusPageRealBinaryTest.php, started by
 * tests/integration/test_shim_status_real_binary.py.
 */
final class StatusPageTest extends ShimTestCase {
	private const TOKEN = 'sid:0123456789abcdef0123456789abcdef01234567,1764633600';

	protected function setUp(): void {
		parent::setUp();
		/* opt1@3: a third VIP, BACKUP in the fixture. */
		$GLOBALS['config']['virtualip']['vip'][] = array('mode' => 'carp', 'interface' => 'opt1', 'vhid' => '3', 'advskew' => '0', 'advbase' => '1',
		    'uniqid' => '65de65ceb0450', 'descr' => 'DMZ VIP', 'type' => 'single', 'subnet_bits' => '32', 'subnet' => '10.0.3.10');
		$this->healthy();
	}

	private static function fixture(string $name) {
		return json_decode(file_get_contents(dirname(__DIR__) . "/fixtures/reports/{$name}.json"), true);
	}

	private function healthy(array $extra = array()): void {
		$this->scenario(array_merge(array(
		    'status' => array('rc' => 1, 'stdout' => self::fixture('status-mixed')),
		    'history' => array('rc' => 0, 'stdout' => self::fixture('history')),
		), $extra));
	}

	/* The body rows of the table with that id. */
	private static function tableRows(string $html, string $id): array {
		if (!preg_match('#<table[^>]*id="' . preg_quote($id, '#') . '"[^>]*>(.*?)</table>#s', $html, $m)) {
			return array();
		}
		preg_match_all('#<tr[^>]*>.*?</tr>#s', $m[1], $rows);
		return array_slice($rows[0], 1);
	}

	private static function text(string $html): string {
		return trim(preg_replace('/[\s\x{a0}]+/u', ' ', html_entity_decode(preg_replace('/<[^>]*>/', ' ', $html), ENT_QUOTES | ENT_HTML5)));
	}

	/* ---------------- the page ---------------- */

	public function testThePageShowsEachVhidItsResourcesAndTheLastFailover(): void {
		[$rc, $out, $err, $headers] = $this->runPage('status_awsha.php');
		$this->assertSame(0, $rc, $err);
		$this->assertSame('', $err);
		$this->assertStringContainsString('<title>Status: AWS High Availability</title>', $out);
		$runs = $this->fakeRuns();
		$this->assertSame(array('--json', '--deadline', '5', 'status'), $runs[0]['argv'], 'a deadline of a few seconds');
		$this->assertSame(array('--json', '--deadline', '5', 'history'), $runs[1]['argv']);

		$vhids = self::tableRows($out, 'awsha-vhids');
		$this->assertCount(3, $vhids);
		[$wan, $lan, $dmz] = array_map(array(self::class, 'text'), $vhids);
		$this->assertStringContainsString('class="awsha-green"', $vhids[0]);
		$this->assertStringStartsWith('WAN@1 wan@1 10.0.1.10 WAN VIP MASTER in sync (4 of 4) 2026-11-30 10:00:00 UTC', $wan);
		$this->assertStringEndsWith('812 ms, 4 changed', $wan);
		$this->assertStringContainsString('class="awsha-red"', $vhids[1]);
		$this->assertStringContainsString('drifted: 1 of 2 not in sync, 1 of 2 could not be read', $lan);
		$this->assertStringContainsString('30.4 s, 1 failed, 0 changed', $lan);
		$this->assertStringContainsString('text-danger">2026-11-30 09:58:10 UTC', $vhids[1], 'a failed last failover stands out');
		$this->assertStringContainsString('class="awsha-grey"', $vhids[2]);
		$this->assertStringContainsString('DMZ@3 opt1@3 10.0.3.10 DMZ VIP BACKUP BACKUP none recorded', $dmz);

		$actions = array_map(array(self::class, 'text'), self::tableRows($out, 'awsha-actions'));
		$this->assertCount(7, $actions);
		$this->assertStringStartsWith('WAN@1 route rtb-05ed6e7c46531c6c3 0.0.0.0/0 -> eni-0bb22222222222222 eni-0bb22222222222222 (this node) yes ' .
		    'i-0123456789abcdef0 (this node) advbase 1 advskew 0 for wan@1 2026-11-30 10:00:00 UTC (', $actions[1]);
		$this->assertStringContainsString('LAN@2 ip eni-0bb22222222222222 10.0.2.10 eni-0cc33333333333333 (i-0fedcba9876543210) no points at', $actions[4]);
		$this->assertStringContainsString('i-0fedcba9876543210 advbase 1 advskew 100 for lan@2', $actions[4], 'the last writer from the tags');
		$this->assertStringContainsString('could not be read: UnauthorizedOperation', $actions[5]);
		$this->assertStringContainsString('DMZ@3 route rtb-0fedcba9876543210 10.98.0.0/16 -> eni-0dd44444444444444 eni-0ee55555555555555 yes', $actions[6]);

		$history = array_map(array(self::class, 'text'), self::tableRows($out, 'awsha-history'));
		$this->assertCount(3, $history, 'newest first');
		$this->assertStringStartsWith('2026-11-30 10:00:06 UTC', $history[0]);
		$this->assertStringContainsString('reconcile WAN@1, LAN@2 1 0 640 ms', $history[0]);
		$this->assertStringContainsString('failover WAN@1 4 0 812 ms 7 steps 2 ms config read 4 ms MASTER confirmed', $history[1]);
		$this->assertStringContainsString('failover LAN@2 0 1 30.4 s', $history[2]);
		$this->assertStringContainsString('<form action="status_awsha.php" method="post" class="form-inline">', $out);
		$this->assertStringContainsString('name="reconcile" value="now"', $out);
	}

	public function testAStatusThatFailsIsSaidClearlyAndTheRestStillShows(): void {
		$this->healthy(array('status' => array('rc' => 2, 'stdout' => array('command' => 'status', 'ok' => false,
		    'error' => 'IMDS: GET meta-data/instance-id: connection refused'))));
		[$rc, $out] = $this->runPage('status_awsha.php');
		$this->assertSame(0, $rc);
		$this->assertStringContainsString('alert alert-danger', $out);
		$this->assertStringContainsString('awsha status failed, so what AWS points at cannot be shown: <code>awsha status: IMDS: GET meta-data/instance-id: connection refused</code>', $out);
		$this->assertStringContainsString('awsha doctor', $out);
		$this->assertSame(array(), self::tableRows($out, 'awsha-vhids'));
		$this->assertCount(3, self::tableRows($out, 'awsha-history'), 'the history does not need EC2');
		$this->assertStringContainsString('name="reconcile" value="now"', $out, 'Reconcile now stays: it may be the way out');
	}

	public function testAHungBinaryCostsThePageSecondsAndSaysSo(): void {
		$this->healthy(array('status' => array('sleep' => 60, 'stdout' => self::fixture('status-mixed'))));
		$started = microtime(true);
		[$rc, $out] = $this->runPage('status_awsha.php');
		$this->assertLessThan(12, microtime(true) - $started, 'deadline 5 s, process killed 3 s later');
		$this->assertSame(0, $rc);
		$this->assertStringContainsString('awsha status gave no answer within 8 s', $out);
	}

	public function testABinaryWithoutHistoryOnlyWarnsInThatPanel(): void {
		$this->healthy(array('history' => array('rc' => 2, 'stdout' => array('command' => 'awsha', 'ok' => false,
		    'error' => "unrecognized subcommand 'history'"))));
		[, $out] = $this->runPage('status_awsha.php');
		$this->assertCount(3, self::tableRows($out, 'awsha-vhids'));
		$this->assertStringContainsString('alert alert-warning', $out);
		$this->assertStringContainsString('The history cannot be read: <code>awsha history: unrecognized subcommand &#039;history&#039;</code>', $out);
		$this->assertStringNotContainsString('alert alert-danger', $out);
	}

	/* ---------------- escaping ---------------- */

	private function hostileNames(): void {
		$GLOBALS['config']['interfaces']['wan']['descr'] = '<script>alert("wan")</script>';
		$GLOBALS['config']['virtualip']['vip'][0]['descr'] = "\"><script>alert('vip')</script><\"";
		$status = self::fixture('status-mixed');
		$status['actions'][5]['error'] = 'Bad <script>alert("err")</script> & "quotes"';
		$status['actions'][4]['reason'] = "<img src=x onerror='alert(1)'>";
		$status['instance'] = 'i-<b>';
		$history = self::fixture('history');
		$history[1]['timeline'][0]['event'] = '<script>alert("timeline")</script>';
		$this->healthy(array('status' => array('rc' => 1, 'stdout' => $status), 'history' => array('rc' => 0, 'stdout' => $history)));
	}

	private function assertNoInjectedMarkup(string $out): void {
		$this->assertStringNotContainsString('<script>alert', $out);
		$this->assertStringNotContainsString('<img', $out);
		$this->assertStringNotContainsString('<b>', $out);
		$this->assertStringNotContainsString("onerror='", $out);
		$this->assertStringNotContainsString('"><script', $out);
	}

	public function testEverythingOnThePageIsEscaped(): void {
		$this->hostileNames();
		[, $out] = $this->runPage('status_awsha.php');
		$this->assertNoInjectedMarkup($out);
		$this->assertStringContainsString('&lt;SCRIPT&gt;ALERT(&quot;WAN&quot;)&lt;/SCRIPT&gt;@1', $out, 'the interface description, upper-cased as Status > CARP does');
		$this->assertStringContainsString('&quot;&gt;&lt;script&gt;alert(&#039;vip&#039;)&lt;/script&gt;&lt;&quot;', $out);
		$this->assertStringContainsString('Bad &lt;script&gt;alert(&quot;err&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;', $out);
		$this->assertStringContainsString('&lt;script&gt;alert(&quot;timeline&quot;)&lt;/script&gt;', $out);
		/* Only pfSense's own scripts (head.inc's, foot.inc's two); the page adds one only while a run is pending. */
		$this->assertSame(3, substr_count($out, '<script'));
	}

	public function testEverythingInTheWidgetIsEscaped(): void {
		$this->hostileNames();
		[, $out] = $this->runPage('widgets/widgets/awsha.widget.php',
		    array('method' => 'POST', 'post' => array('ajax' => 'ajax', 'awsha' => 'status', '__csrf_magic' => self::TOKEN)));
		$this->assertNoInjectedMarkup($out);
		$this->assertStringContainsString('title="&quot;&gt;&lt;script&gt;alert(&#039;vip&#039;)&lt;/script&gt;&lt;&quot;"', $out);
		$this->assertStringNotContainsString('<script', $out);
	}

	public function testAnErrorFromTheBinaryIsEscapedInTheDangerBoxes(): void {
		$this->healthy(array('status' => array('rc' => 2, 'stdout' => array('command' => 'status', 'ok' => false, 'error' => '<script>alert(1)</script>'))));
		[, $page] = $this->runPage('status_awsha.php');
		[, $widget] = $this->runPage('widgets/widgets/awsha.widget.php',
		    array('method' => 'POST', 'post' => array('ajax' => 'ajax', 'awsha' => 'status', '__csrf_magic' => self::TOKEN)));
		foreach (array($page, $widget) as $out) {
			$this->assertNoInjectedMarkup($out);
			$this->assertStringContainsString('&lt;script&gt;alert(1)&lt;/script&gt;', $out);
		}
	}

	/* ---------------- Reconcile now ---------------- */

	public function testReconcileNowIsAPostThatNeedsPfSensesCsrfToken(): void {
		[, $out] = $this->runPage('status_awsha.php');
		$this->assertMatchesRegularExpression("#<form action=\"status_awsha.php\" method=\"post\" class=\"form-inline\"><input type='hidden' name='__csrf_magic' value=\"" .
		    preg_quote(self::TOKEN, '#') . '" />#', $out, 'csrf-magic gives the form its token');

		foreach (array(array(), array('__csrf_magic' => 'sid:forged,1')) as $token) {
			[$rc, $out, , $headers, $calls] = $this->runPage('status_awsha.php', array('method' => 'POST', 'post' => array('reconcile' => 'now') + $token));
			$this->assertSame(array('HTTP/1.1 403 Forbidden'), $headers);
			$this->assertStringContainsString('CSRF check failed', $out);
			$this->assertSame(array(), self::callsOf($calls, 'mwexec_bg'), 'nothing started');
		}
		$this->assertSame(array(), array_filter($this->fakeRuns(), function ($r) {
			return in_array('reconcile', $r['argv'], true);
		}));
		$this->assertSame(array(), glob("{$this->runDir}/awsha.gui.*"));
	}

	public function testReconcileNowStartsTheWrapperInTheBackgroundAndRedirects(): void {
		$started = microtime(true);
		[$rc, $out, , $headers, $calls] = $this->runPage('status_awsha.php',
		    array('method' => 'POST', 'post' => array('reconcile' => 'now', '__csrf_magic' => self::TOKEN)));
		$this->assertLessThan(2, microtime(true) - $started);
		$this->assertSame(0, $rc);
		$this->assertSame('', $out);
		$this->assertCount(1, $headers);
		$this->assertMatchesRegularExpression('#^Location: status_awsha\.php\?reconcile=[0-9a-f]{16}$#', $headers[0]);
		$id = substr($headers[0], -16);
		$bg = self::callsOf($calls, 'mwexec_bg');
		$this->assertCount(1, $bg);
		$this->assertSame(array(AWSHA_PHP, AWSHA_RUN, '--gui-result', $id, 'reconcile'), $this->shellWords($bg[0][0]));
		$this->assertSame(array(), $this->fakeRuns(), 'the page itself runs no awsha');
		$this->assertTrue(json_decode(file_get_contents("{$this->runDir}/awsha.gui.{$id}.json"), true)['pending']);
	}

	public function testReconcileNowShowsTheResultOnceTheRunEnds(): void {
		$report = self::fixture('reconcile-repaired');
		$this->healthy(array('reconcile' => array('rc' => 0, 'stdout' => $report, 'sleep' => 0.5)));
		$env = array('AWSHA_STUB_EXEC_BG' => '1');
		[, , , $headers] = $this->runPage('status_awsha.php', array('method' => 'POST', 'post' => array('reconcile' => 'now', '__csrf_magic' => self::TOKEN)), $env);
		$id = substr($headers[0], -16);

		[, $out] = $this->runPage('status_awsha.php', array('get' => array('reconcile' => $id)));
		$this->assertStringContainsString('alert alert-info', $out);
		$this->assertStringContainsString('; waiting for its result…', $out);
		$this->assertStringContainsString("\$.getJSON('status_awsha.php', {\"reconcile\":\"{$id}\",\"poll\":\"1\"}", $out);
		$this->assertStringContainsString('disabled="disabled"', $out, 'one at a time from the page');

		$done = false;
		for ($i = 0; $i < 100 && !$done; $i++) {
			usleep(100000);
			[, $poll, , $pheaders] = $this->runPage('status_awsha.php', array('get' => array('reconcile' => $id, 'poll' => '1')));
			$done = json_decode($poll, true)['done'];
		}
		$this->assertTrue($done);
		$this->assertSame(array('Content-Type: application/json'), $pheaders);

		[, $out] = $this->runPage('status_awsha.php', array('get' => array('reconcile' => $id)));
		$this->assertStringContainsString('alert alert-warning', $out, 'something was repaired');
		$this->assertMatchesRegularExpression('#Reconcile started at \d\d:\d\d:\d\d finished after \d+ ms, exit 0: 1 changed, 4 unchanged\.#', $out);
		$this->assertStringContainsString('<li>WAN@1 route rtb-05ed6e7c46531c6c3: changed</li>', $out);
		$this->assertStringNotContainsString('disabled="disabled"', $out);
		$this->assertCount(3, self::tableRows($out, 'awsha-vhids'), 'and the status as it is now');
		$runs = array_values(array_filter($this->fakeRuns(), function ($r) {
			return in_array('reconcile', $r['argv'], true);
		}));
		$this->assertSame(array('--json', 'reconcile'), $runs[0]['argv'], 'the wrapper ran a plain reconcile, as the job does');
	}

	public function testAFailedRunAndARunThatNeverEndsAreSaidSo(): void {
		$id = 'a0a1a2a3a4a5a6a7';
		file_put_contents("{$this->runDir}/awsha.gui.{$id}.json", json_encode(array('started' => microtime(true) - 2, 'finished' => microtime(true),
		    'rc' => 1, 'report' => self::fixture('reconcile-route-failed'), 'error' => null)));
		[, $out] = $this->runPage('status_awsha.php', array('get' => array('reconcile' => $id)));
		$this->assertStringContainsString('alert alert-danger', $out);
		$this->assertStringContainsString('exit 1:', $out);
		$this->assertStringContainsString(': failed — ', $out);

		$id = 'b0b1b2b3b4b5b6b7';
		file_put_contents("{$this->runDir}/awsha.gui.{$id}.json", json_encode(array('pending' => true, 'started' => microtime(true) - 60)));
		[, $out] = $this->runPage('status_awsha.php', array('get' => array('reconcile' => $id)));
		$this->assertStringContainsString('gave no result within 50 s', $out);
		$this->assertStringNotContainsString('getJSON', $out, 'no more waiting');
	}

	public function testAReconcileIdIsSixteenHexDigitsOrIgnored(): void {
		foreach (array('../../../etc/passwd', 'A0A1A2A3A4A5A6A7', '0123', '"><script>') as $bad) {
			[$rc, $out] = $this->runPage('status_awsha.php', array('get' => array('reconcile' => $bad)));
			$this->assertSame(0, $rc);
			$this->assertStringNotContainsString('Reconcile started', $out);
			$this->assertStringNotContainsString('No such reconcile run', $out);
			$this->assertNoInjectedMarkup($out);
			[, $poll] = $this->runPage('status_awsha.php', array('get' => array('reconcile' => $bad, 'poll' => '1')));
			$this->assertSame('{"done":true}', $poll);
		}
		$this->assertFalse(awsha_gui_result_id_valid('0123456789abcdeg'));
		$this->assertTrue(awsha_gui_result_id_valid('0123456789abcdef'));
	}

	public function testTheWrapperRefusesABadResultId(): void {
		[$rc, , $err] = $this->runWrapper(array('--gui-result', '../x', 'reconcile'));
		$this->assertSame(2, $rc);
		$this->assertStringContainsString('usage: awsha-run --gui-result', $err);
		$this->assertSame(array(), $this->fakeRuns());
	}

	/* ---------------- the widget ---------------- */

	public function testTheWidgetAsksTheDashboardsRefreshAndDoesNotWaitForTheBinary(): void {
		$request = array('globals' => array('widgetkey' => 'awsha-0', 'widget_first_instance' => true));
		[$rc, $out] = $this->runPage('widgets/widgets/awsha.widget.php', $request);
		$this->assertSame(0, $rc);
		$this->assertSame(array(), $this->fakeRuns(), 'the dashboard itself never runs the binary');
		$this->assertStringContainsString('<div id="awsha_widget_status">', $out);
		$this->assertStringContainsString('Updating…', $out);
		$this->assertStringContainsString('awshaObject.url = "/widgets/widgets/awsha.widget.php";', $out);
		$this->assertStringContainsString('awshaObject.parms = {ajax: "ajax", awsha: "status"};', $out);
		$this->assertStringContainsString('awshaObject.freq = 30;', $out, 'three widget periods');
		$this->assertStringContainsString('register_ajax(awshaObject);', $out);
		$this->assertStringContainsString('href="/status_awsha.php"', $out);

		$request['globals']['widget_first_instance'] = false;
		[, $out] = $this->runPage('widgets/widgets/awsha.widget.php', $request);
		$this->assertStringNotContainsString('register_ajax', $out, 'one refresh, whatever the copies');
	}

	public function testTheWidgetShowsOneLinePerVhidGreenRedGrey(): void {
		[$rc, $out] = $this->runPage('widgets/widgets/awsha.widget.php',
		    array('method' => 'POST', 'post' => array('ajax' => 'ajax', 'awsha' => 'status', '__csrf_magic' => self::TOKEN)));
		$this->assertSame(0, $rc);
		$this->assertSame(array('--json', '--deadline', '5', 'status'), $this->fakeRuns()[0]['argv']);
		$this->assertCount(1, $this->fakeRuns(), 'no history for the widget');
		preg_match_all('#<tr class="awsha-(\w+)" data-vhid="([^"]+)">(.*?)</tr>#s', $out, $m, PREG_SET_ORDER);
		$lines = array();
		foreach ($m as $row) {
			$lines[$row[2]] = array($row[1], self::text($row[3]));
			$this->assertStringContainsString(array('green' => 'text-success', 'red' => 'text-danger', 'grey' => 'text-muted')[$row[1]], $row[3]);
		}
		$this->assertSame(array(
		    'wan@1' => array('green', 'WAN@1 in sync (4 of 4) 2026-11-30 10:00:00 UTC (' . self::ago('2026-11-30T10:00:00.123Z') . ')'),
		    'lan@2' => array('red', 'LAN@2 drifted: 1 of 2 not in sync, 1 of 2 could not be read 2026-11-30 09:58:10 UTC (' . self::ago('2026-11-30T09:58:10.500Z') . '), failed'),
		    'opt1@3' => array('grey', 'DMZ@3 BACKUP none recorded'),
		), $lines);
	}

	private static function ago(string $when): string {
		return preg_replace('/^.*\((.*)\)$/', '$1', awsha_when($when));
	}

	public function testTheWidgetsRefreshNeedsTheCsrfTokenToo(): void {
		[, $out, , $headers] = $this->runPage('widgets/widgets/awsha.widget.php', array('method' => 'POST', 'post' => array('ajax' => 'ajax', 'awsha' => 'status')));
		$this->assertSame(array('HTTP/1.1 403 Forbidden'), $headers);
		$this->assertSame(array(), $this->fakeRuns());
	}

	public function testTheWidgetSaysWhenStatusFailsOrHangs(): void {
		$this->healthy(array('status' => array('sleep' => 60, 'stdout' => self::fixture('status-mixed'))));
		$started = microtime(true);
		[, $out] = $this->runPage('widgets/widgets/awsha.widget.php',
		    array('method' => 'POST', 'post' => array('ajax' => 'ajax', 'awsha' => 'status', '__csrf_magic' => self::TOKEN)));
		$this->assertLessThan(12, microtime(true) - $started);
		$this->assertStringStartsWith('<div class="alert alert-danger" role="alert">awsha status failed: awsha status gave no answer within 8 s', $out);
	}

	/* A BACKUP VHID whose resource still points here says so (still grey: the peer's business). */
	public function testABackupVhidThatAwsStillPointsHereSaysSo(): void {
		$status = self::fixture('status-mixed');
		$status['actions'][6]['points_here'] = true;
		$status['actions'][6]['in_sync'] = false;
		$vhids = awsha_status_vhids($status);
		$this->assertSame(array('grey', 'BACKUP; AWS still points here (1 of 1)'), array($vhids[2]['color'], $vhids[2]['summary']));
	}
}
