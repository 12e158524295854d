<?php

/*
 * XMLRPC sync of the rows between the two nodes (issue 12 points 1, 5, 6),
 * on each pfSense release the stubs model. A primary ($GLOBALS['config'])
 * and a secondary (the stub's peer) both have the package installed the way
 * install_package_xml() installs it; core sync is rc.filter_synchronize's
 * model, the package's own sync is what a save on the primary starts.
 * The secondary sits in another AZ: its ENI subnets differ (10.0.11.0/24,
 * 10.0.12.0/24 instead of 10.0.1.0/24, 10.0.2.0/24), so synced addresses
 * are mapped with "awsha map-ip".
 */
final class XmlrpcSyncTest extends ShimTestCase {
	private const PASSWORD = 'sync-S3cret!pw';
	private string $peerScenario;

	public static function profiles(): array {
		return array('2.7.2' => array('2.7.2'), '2.8' => array('2.8'), 'current' => array('current'));
	}

	protected function setUp(): void {
		parent::setUp();
		$GLOBALS['__stub_exec'] = true;
		/* The secondary, as pfSense left it before this sync. */
		$GLOBALS['config'] = self::baseConfig();
		awsha_stub_install_package();
		$GLOBALS['config']['virtualip']['vip'][0]['advbase'] = '2';
		$GLOBALS['config']['installedpackages']['awsha']['config'] = array(
		    array('enable' => '', 'endpoint' => 'https://vpce-0bbbb-secondary.ec2.eu-west-1.vpce.amazonaws.com', 'region' => ''));
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(
		    self::ipRow('wan@1', 'wan', '10.0.11.99', 'on'),   // synced earlier: replaced
		    self::ipRow('wan@1', 'wan', '10.0.11.50', ''),     // the secondary's own: kept
		);
		$GLOBALS['__stub_peer'] = $GLOBALS['config'];

		/* The primary. */
		$GLOBALS['config'] = self::baseConfig();
		awsha_stub_install_package();
		$GLOBALS['config']['hasync'] = array('synchronizetoip' => '10.0.9.2', 'username' => 'admin',
		    'password' => self::PASSWORD, 'synchronizevirtualip' => 'on');
		$GLOBALS['config']['installedpackages']['awsha']['config'] = array(
		    array('enable' => 'on', 'endpoint' => 'https://vpce-0aaaa-primary.ec2.eu-west-1.vpce.amazonaws.com', 'region' => 'eu-west-1'));
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(
		    self::ipRow('wan@1', 'wan', '10.0.1.10', 'on'),
		    self::ipRow('wan@1', 'wan', '10.0.1.30', ''),      // the primary's own: not sent
		    self::ipRow('lan@2', 'lan', '10.0.2.10', 'ON'),
		);
		$GLOBALS['config']['installedpackages']['awsharoutes']['config'] = array(
		    array('vhid' => 'wan@1', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'cidr' => '0.0.0.0/0', 'interface' => 'lan', 'xmlrpcsync' => 'on'));
		$GLOBALS['config']['installedpackages']['awshaeips']['config'] = array(
		    array('vhid' => 'wan@1', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67890', 'interface' => 'wan', 'privateip' => '10.0.1.10', 'xmlrpcsync' => 'on'));

		/* A job that starts reconciles at once (ServiceTest): a healthy reconcile on both nodes. */
		$reconcile = array('rc' => 0, 'stdout' => array('command' => 'reconcile', 'ok' => true, 'vhids' => array(), 'actions' => array(),
		    'split_brain' => array(), 'notices' => array()));
		$this->scenario(array('interfaces' => array('rc' => 0, 'stdout' => self::interfacesReport()), 'reconcile' => $reconcile));
		$this->peerScenario = "{$this->tmp}/peer-scenario.json";
		$peer = self::interfacesReport();
		$peer['interfaces'][0]['subnet_cidr'] = '10.0.11.0/24';
		$peer['interfaces'][1]['subnet_cidr'] = '10.0.12.0/24';
		file_put_contents($this->peerScenario, json_encode(array(
		    'interfaces' => array('rc' => 0, 'stdout' => $peer),
		    'reconcile' => $reconcile,
		    'map-ip' => array('answers' => array('10.0.1.10' => '10.0.11.10', '10.0.2.10' => '10.0.12.10', '10.0.1.20' => '10.0.11.20')))));
		mkdir("{$this->runDir}/peer");
		$GLOBALS['__stub_peer_env'] = array('AWSHA_FAKE_SCENARIO' => $this->peerScenario, 'AWSHA_RUN_DIR' => "{$this->runDir}/peer");
		$GLOBALS['__stub_calls'] = array();
	}

	/* The pushes started in the background (a job that starts also starts a reconcile there). */
	private function pushes(): array {
		return array_values(array_filter($this->stubCalls('mwexec_bg'), function ($c) {
			return str_contains($c[0], "'" . AWSHA_SYNC_ARG . "'");
		}));
	}

	private static function ipRow(string $vhid, string $interface, string $ip, string $sync): array {
		return array('vhid' => $vhid, 'interface' => $interface, 'ipaddr' => $ip, 'xmlrpcsync' => $sync);
	}

	private function peer(string $path) {
		$el = $GLOBALS['__stub_peer'];
		foreach (explode('/', $path) as $part) {
			$el = $el[$part] ?? null;
		}
		return $el;
	}

	/*
	 * A save on the primary, as pfSense does it: write_config() (which makes
	 * check_reload_status run rc.filter_synchronize), then the page's
	 * custom_php_resync_config_command. What the resync starts in the
	 * background runs here to its end (a child process: the wrapper, with
	 * the configs in files).
	 */
	private function saveOnThePrimary(string $profile): array {
		$GLOBALS['__stub_profile'] = $profile;
		awsha_stub_rc_filter_synchronize();
		$primary_file = "{$this->tmp}/primary.json";
		$peer_file = "{$this->tmp}/peer.json";
		file_put_contents($primary_file, json_encode($GLOBALS['config']));
		file_put_contents($peer_file, json_encode($GLOBALS['__stub_peer']));
		$stubLog = "{$this->tmp}/child-stubs.log";
		$saved = array();
		$env = array('AWSHA_STUB_PROFILE' => $profile, 'AWSHA_STUB_CONFIG' => $primary_file, 'AWSHA_STUB_PEER_CONFIG' => $peer_file,
		    'AWSHA_STUB_PEER_ENV' => json_encode($GLOBALS['__stub_peer_env']), 'AWSHA_STUB_EXEC' => '1', 'AWSHA_STUB_LOG' => $stubLog);
		foreach ($env as $name => $value) {
			$saved[$name] = getenv($name);
			putenv("{$name}={$value}");
		}
		$GLOBALS['__stub_exec_bg'] = true;
		try {
			eval(awsha_stub_package_gui()['custom_php_resync_config_command']);
		} finally {
			foreach ($saved as $name => $value) {
				putenv($value === false ? $name : "{$name}={$value}");
			}
			$GLOBALS['__stub_exec_bg'] = false;
		}
		$GLOBALS['__stub_peer'] = json_decode(file_get_contents($peer_file), true);
		return self::readStubLog($stubLog);
	}

	/* ---------------- point 1: never break core sync; rows arrive on every release ---------------- */

	/** @dataProvider profiles */
	public function testCoreSyncStillConfiguresTheSyncedCarpVipsOnTheSecondary(string $profile): void {
		$GLOBALS['__stub_profile'] = $profile;
		$sent = awsha_stub_rc_filter_synchronize();
		$this->assertArrayHasKey('virtualip', $sent);
		$this->assertSame('1', $this->peer('virtualip/vip/0/advbase'), 'written on the secondary');
		$this->assertSame(array(array('wan', '1', '0')), $this->stubCalls('interface_carp_configure'),
		    'and configured on its interfaces: a package declaring plugin_xmlrpc_recv on 2.8 makes xmlrpc.php skip this');
	}

	/** @dataProvider profiles */
	public function testASaveOnThePrimaryBringsTheSyncedRowsToTheSecondary(string $profile): void {
		$child = $this->saveOnThePrimary($profile);

		$this->assertSame(array(
		    self::ipRow('wan@1', 'wan', '10.0.11.10', 'on'),
		    self::ipRow('lan@2', 'lan', '10.0.12.10', 'ON'),
		    self::ipRow('wan@1', 'wan', '10.0.11.50', ''),
		), $this->peer('installedpackages/awshaips/config'), 'synced rows mapped into the secondary\'s subnets, then its own rows');
		$this->assertSame(array(array('vhid' => 'wan@1', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'cidr' => '0.0.0.0/0', 'interface' => 'lan', 'xmlrpcsync' => 'on')),
		    $this->peer('installedpackages/awsharoutes/config'));
		$this->assertSame('10.0.11.10', $this->peer('installedpackages/awshaeips/config/0/privateip'));
		$this->assertSame('on', $this->peer('installedpackages/awsha/config/0/enable'), 'the Reconcile switch is synced');
		$this->assertSame(array(), self::callsOf($child, 'file_notice'), 'no error on the way');
		/* The secondary's job follows the synced switch. */
		$this->assertFileExists("{$this->runDir}/peer/awsha_reconcile.pid");
		$this->assertContains((int)trim(file_get_contents("{$this->runDir}/peer/awsha_reconcile.pid")), $this->liveMinicrons());
	}

	/* ---------------- point 5: per-node settings ---------------- */

	/** @dataProvider profiles */
	public function testEndpointAndRegionStayEachNodesOwn(string $profile): void {
		$this->saveOnThePrimary($profile);
		$this->assertSame(array('enable' => 'on', 'endpoint' => 'https://vpce-0bbbb-secondary.ec2.eu-west-1.vpce.amazonaws.com', 'region' => ''),
		    $this->peer('installedpackages/awsha/config/0'));
	}

	/* ---------------- point 6: the live configuration is never modified ---------------- */

	/** @dataProvider profiles */
	public function testSyncNeverChangesThePrimarysConfiguration(string $profile): void {
		$GLOBALS['config']['hasync']['new_password'] = 'rotated-S3cret';
		$before = $GLOBALS['config'];
		$this->saveOnThePrimary($profile);
		$written = $GLOBALS['__stub_written_configs']['self'] ?? array();
		$this->assertCount(1, $written, 'rc.filter_synchronize writes the config when hasync/new_password is set');
		unset($before['hasync']['new_password'], $written[0]['hasync']['new_password']);
		$before['hasync']['password'] = 'rotated-S3cret';
		$this->assertSame($before, $written[0], 'nothing of the package\'s (subnet_cidr …) in what was written');
		$this->assertSame($written[0], $GLOBALS['config']);
	}

	public function testThePushBuildsItsPayloadFromACopy(): void {
		$before = $GLOBALS['config'];
		$this->assertTrue(awsha_sync_to_peer());
		$this->assertSame($before, $GLOBALS['config']);
		$this->assertSame(array(), $this->stubCalls('config_set_path', null), 'the primary\'s config is only read');
		$this->assertNotEmpty($this->stubCalls('config_set_path', 'peer'));
	}

	/* ---------------- the push ---------------- */

	public function testASaveStartsThePushInTheBackgroundOnlyWhenThereIsAPeerAndNotAtBoot(): void {
		awsha_resync();
		$bg = $this->pushes();
		$this->assertCount(1, $bg);
		$this->assertSame(array(AWSHA_PHP, AWSHA_RUN, '--sync-to-peer'), $this->shellWords($bg[0][0]));

		$GLOBALS['__stub_calls'] = array();
		$GLOBALS['__stub_booting'] = true;
		awsha_resync();
		$this->assertSame(array(), $this->pushes(), 'rc.start_packages at boot: no network, no wait');

		$GLOBALS['__stub_booting'] = false;
		unset($GLOBALS['config']['hasync']['synchronizetoip']);
		awsha_resync();
		$this->assertSame(array(), $this->pushes(), 'the secondary (no sync target) pushes nothing');
	}

	public function testTheTabsDeleteCommandPushesToo(): void {
		foreach (array('awsha_ips.xml', 'awsha_routes.xml', 'awsha_eips.xml') as $page) {
			$xml = simplexml_load_file(AWSHA_PKG_DIR . "/{$page}");
			$this->assertStringContainsString('awsha_resync();', (string)$xml->custom_delete_php_command,
			    "{$page}: pkg.php runs custom_delete_php_command, not the resync command, after deleting a row");
		}
	}

	public function testThePayloadCarriesSyncedRowsTheSendersSubnetsAndOnlyTheReconcileSwitch(): void {
		$payload = awsha_sync_payload();
		$this->assertSame(array('enable' => 'on'), $payload['settings'], 'endpoint and region are per node');
		$this->assertSame(array(
		    self::ipRow('wan@1', 'wan', '10.0.1.10', 'on') + array('subnet_cidr' => '10.0.1.0/24'),
		    self::ipRow('lan@2', 'lan', '10.0.2.10', 'ON') + array('subnet_cidr' => '10.0.2.0/24'),
		), $payload['sections']['awshaips']);
		$this->assertArrayNotHasKey('subnet_cidr', $payload['sections']['awsharoutes'][0]);
		$this->assertSame('10.0.1.0/24', $payload['sections']['awshaeips'][0]['subnet_cidr']);
		$interfaces = array_filter($this->fakeRuns(), function ($r) {
			return in_array('interfaces', $r['argv'], true);
		});
		$this->assertCount(1, $interfaces, 'one awsha interfaces for the whole payload');
	}

	public function testHostileRowValuesTravelAsDataNeverAsCode(): void {
		$evil = "x'); touch('pwned'); //\" \$(touch pwned) `touch pwned`\n?>";
		$GLOBALS['config']['installedpackages']['awsharoutes']['config'][0]['routetable'] = $evil;
		$GLOBALS['config']['installedpackages']['awsharoutes']['config'][0]['cidr'] = $evil;
		$this->assertTrue(awsha_sync_to_peer());
		$this->assertSame($evil, $this->peer('installedpackages/awsharoutes/config/0/routetable'));
		$this->assertFileDoesNotExist("{$this->tmp}/pwned");
		$code = $this->stubCalls('xmlrpc')[0];
		$this->assertSame(array('exec_php', 60), $code);
	}

	public function testAnUnreachablePeerIsLoggedOnceWithoutTheSyncPassword(): void {
		$GLOBALS['__stub_peer_error'] = 'Failed to connect to {url}: Connection refused';
		$this->assertFalse(awsha_sync_to_peer());
		$lines = array_values(array_filter(self::syslogLines($GLOBALS['__stub_calls']), function ($l) {
			return $l[0] === 'awsha';
		}));
		$this->assertCount(1, $lines);
		$this->assertSame(LOG_ERR, $lines[0][1]);
		$this->assertStringContainsString('XMLRPC sync to https://10.0.9.2:443/xmlrpc.php failed', $lines[0][2]);
		foreach (self::syslogLines($GLOBALS['__stub_calls']) as $l) {
			if ($l[0] === 'awsha') {
				$this->assertStringNotContainsString(self::PASSWORD, $l[2]);
				$this->assertStringNotContainsString(rawurlencode(self::PASSWORD), $l[2]);
			}
		}
		$this->assertSame(array('10.0.11.99', '10.0.11.50'), array_column($this->peer('installedpackages/awshaips/config'), 'ipaddr'), 'nothing changed there');
	}

	public function testTheWrapperRunsThePushAndExits1WhenItFails(): void {
		$primary_file = "{$this->tmp}/primary.json";
		file_put_contents($primary_file, json_encode($GLOBALS['config']));
		file_put_contents("{$this->tmp}/peer.json", json_encode($GLOBALS['__stub_peer']));
		[$rc, , $err] = $this->runWrapper(array('--sync-to-peer'), array('AWSHA_STUB_CONFIG' => $primary_file,
		    'AWSHA_STUB_PEER_CONFIG' => "{$this->tmp}/peer.json", 'AWSHA_STUB_PEER_ERROR' => 'Connection refused',
		    'AWSHA_STUB_PEER_ENV' => json_encode($GLOBALS['__stub_peer_env'])));
		$this->assertSame(1, $rc, $err);
		$this->assertSame(array(), $this->fakeRuns() ? array_values(array_filter($this->fakeRuns(), function ($r) {
			return !in_array('interfaces', $r['argv'], true);
		})) : array(), 'the push runs no awsha command but interfaces');
	}

	public function testAPeerWithoutThePackageIsSaidSo(): void {
		/* exec_php there fails to include awsha.inc: an XMLRPC fault. */
		$GLOBALS['__stub_peer_error'] = "Exception calling XMLRPC method exec_php #-32500 : Failed opening required 'awsha.inc'";
		$this->assertFalse(awsha_sync_to_peer());
		$this->assertStringContainsString("Failed opening required 'awsha.inc'", $this->awshaLines()[0]);
	}

	/* ---------------- the receiver ---------------- */

	private function receive(array $sections, array $settings = null): string {
		$payload = array('version' => 1, 'settings' => $settings ?? array(), 'sections' => $sections);
		return awsha_stub_on_peer(function () use ($payload) {
			return awsha_sync_receive(base64_encode(json_encode($payload)));
		});
	}

	public function testReceiveLeavesAddressesWhenTheMasksDifferOrNoSubnetCameOrMapIpFails(): void {
		$this->receive(array('awshaips' => array(
		    self::ipRow('wan@1', 'wan', '10.0.1.10', 'on') + array('subnet_cidr' => '10.0.0.0/16'),
		    self::ipRow('wan@1', 'wan', '10.0.1.11', 'on'),
		    self::ipRow('wan@1', 'wan', '10.0.1.12', 'on') + array('subnet_cidr' => '10.0.1.0/24'),
		    array('vhid' => 'opt1@3', 'interface' => 'opt1', 'ipaddr' => '10.0.13.10', 'xmlrpcsync' => 'on', 'subnet_cidr' => '10.0.3.0/24'),
		)));
		$this->assertSame(array('10.0.1.10', '10.0.1.11', '10.0.1.12', '10.0.13.10', '10.0.11.50'),
		    array_column($this->peer('installedpackages/awshaips/config'), 'ipaddr'));
		$this->assertArrayNotHasKey('subnet_cidr', $this->peer('installedpackages/awshaips/config/0'), 'never stored');
		$logged = implode("\n", $this->awshaLines());
		$this->assertStringContainsString('differ in size; address kept', $logged);
		$this->assertStringContainsString('the peer sent no IPv4 ENI subnet for it; address kept', $logged);
		$this->assertStringContainsString('awsha map-ip failed (exit 2)', $logged);
		$this->assertStringContainsString('"opt1" has no IPv4 ENI subnet on this node', $logged);
	}

	/* ---------------- issue 14 point 5: IPv6 addresses travel like IPv4 ---------------- */

	private const SENDER6 = array('wan' => '2600:1f18:abc:4d01::/64', 'lan' => '2600:1f18:abc:4d02::/64');
	private const PEER6 = array('wan' => '2600:1f18:abc:4d11::/64', 'lan' => '2600:1f18:abc:4d12::/64');

	private function withIpv6Subnets(string $scenario_file, array $subnets, array $extra = array()): void {
		$scenario = is_file($scenario_file) ? json_decode(file_get_contents($scenario_file), true) : array();
		foreach ($scenario['interfaces']['stdout']['interfaces'] as $n => $i) {
			$scenario['interfaces']['stdout']['interfaces'][$n]['subnet_ipv6_cidrs'] = array($subnets[$i['interface']]);
			$scenario['interfaces']['stdout']['interfaces'][$n]['ipv6s'] = array();
		}
		file_put_contents($scenario_file, json_encode(array_merge($scenario, $extra)));
	}

	public function testThePayloadCarriesTheSendersIpv6SubnetForAnIpv6Address(): void {
		$this->withIpv6Subnets($this->scenarioFile, self::SENDER6);
		$GLOBALS['config']['installedpackages']['awshaips']['config'][] = self::ipRow('wan@5', 'wan', '2600:1f18:abc:4d01::10', 'on');
		$payload = awsha_sync_payload();
		$rows = $payload['sections']['awshaips'];
		$this->assertSame('10.0.1.0/24', $rows[0]['subnet_cidr'], 'an IPv4 address: the IPv4 subnet');
		$this->assertSame(array('vhid' => 'wan@5', 'interface' => 'wan', 'ipaddr' => '2600:1f18:abc:4d01::10', 'xmlrpcsync' => 'on',
		    'subnet_cidr' => '2600:1f18:abc:4d01::/64'), $rows[2], 'an IPv6 address: the subnet\'s /64');
		$this->assertSame('10.0.1.0/24', $payload['sections']['awshaeips'][0]['subnet_cidr']);
	}

	public function testReceiveMapsAnIpv6AddressIntoThisNodesSlash64WithMapIp(): void {
		$this->withIpv6Subnets($this->peerScenario, self::PEER6,
		    array('map-ip' => array('answers' => array('2600:1f18:abc:4d01::10' => '2600:1f18:abc:4d11::10', '10.0.1.10' => '10.0.11.10'))));
		$answer = $this->receive(array('awshaips' => array(
		    self::ipRow('wan@5', 'wan', '2600:1f18:abc:4d01::10', 'on') + array('subnet_cidr' => '2600:1f18:abc:4d01::/64'),
		    self::ipRow('wan@1', 'wan', '10.0.1.10', 'on') + array('subnet_cidr' => '10.0.1.0/24'),
		    self::ipRow('wan@6', 'wan', '2600:1f18:abc:4d11::20', 'on') + array('subnet_cidr' => '2600:1F18:0ABC:4D11:0000::/64'),
		    self::ipRow('wan@7', 'wan', '2600:1f18:abc:4d01::30', 'on') + array('subnet_cidr' => '10.0.1.0/24'),
		)));
		$this->assertStringStartsWith('updated ', $answer);
		$this->assertSame(array('2600:1f18:abc:4d11::10', '10.0.11.10', '2600:1f18:abc:4d11::20', '2600:1f18:abc:4d01::30', '10.0.11.50'),
		    array_column($this->peer('installedpackages/awshaips/config'), 'ipaddr'));
		$maps = array_values(array_filter(array_map(function ($r) {
			return $r['argv'];
		}, $this->fakeRuns()), function ($argv) {
			return in_array('map-ip', $argv, true);
		}));
		$this->assertSame(array('--deadline', '10', 'map-ip', '--interface', 'wan', '--from-subnet', '2600:1f18:abc:4d01::/64', '2600:1f18:abc:4d01::10'),
		    $maps[0], 'the same flags as IPv4; --from-subnet the peer\'s /64');
		$this->assertCount(2, $maps, 'the same /64 (any spelling) is not mapped; a subnet of the other family is not used');
		$this->assertStringContainsString('awshaips row 4 ipaddr 2600:1f18:abc:4d01::30: the peer sent no IPv6 ENI subnet for it; address kept',
		    implode("\n", $this->awshaLines()));
	}

	public function testReceiveOfAnEmptyTabDropsTheSyncedRowsAndKeepsTheLocalOnes(): void {
		$this->receive(array('awshaips' => array()));
		$this->assertSame(array(self::ipRow('wan@1', 'wan', '10.0.11.50', '')), $this->peer('installedpackages/awshaips/config'));
	}

	public function testReceiveWritesTheConfigOnlyWhenSomethingChanged(): void {
		unset($GLOBALS['__stub_written_configs']);
		$routes = array(array('vhid' => 'wan@1', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'cidr' => '0.0.0.0/0', 'interface' => 'lan', 'xmlrpcsync' => 'on'));
		$this->receive(array('awsharoutes' => $routes));
		$this->assertCount(1, $GLOBALS['__stub_written_configs']['peer']);
		$this->receive(array('awsharoutes' => $routes));
		$this->assertCount(1, $GLOBALS['__stub_written_configs']['peer'], 'the same rows again: no config write (and no new backup in the history)');
	}

	public function testReceiveIgnoresAMalformedPayloadAndNonTextValues(): void {
		$answer = awsha_stub_on_peer(function () {
			return awsha_sync_receive('not base64 json');
		});
		$this->assertStringContainsString('malformed', $answer);
		$this->receive(array('awsharoutes' => array(array('vhid' => 'wan@1', 'routetable' => array('x' => 'y'), 'cidr' => '0.0.0.0/0',
		    'interface' => 'lan', 'xmlrpcsync' => 'on')), 'awshaevil' => array(array('x' => 'y'))));
		$this->assertSame(array('vhid' => 'wan@1', 'cidr' => '0.0.0.0/0', 'interface' => 'lan', 'xmlrpcsync' => 'on'),
		    $this->peer('installedpackages/awsharoutes/config/0'));
		$this->assertNull($this->peer('installedpackages/awshaevil'), 'only the package\'s own tabs');
	}

	/* ---------------- the hooks of older versions ---------------- */

	public function testTheGuiXmlDeclaresNoXmlrpcHookButTheFunctionsStayHarmless(): void {
		$types = array_column(awsha_stub_package_gui()['plugins']['item'], 'type');
		$this->assertSame(array('plugin_carp'), $types);
		/* A config.xml from an older version may still name them: pfSense must find functions that change nothing. */
		$this->assertSame(array(), awsha_plugin_xmlrpc_send(array()));
		$this->assertSame(array(), awsha_plugin_xmlrpc_recv(array('installedpackages' => array('awshaips' => array('config' => array(self::ipRow('wan@1', 'wan', '1.2.3.4', 'on')))))));
		$this->assertNull(awsha_plugin_xmlrpc_recv_done(array()));
	}
}
