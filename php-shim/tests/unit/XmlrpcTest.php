<?php

final class XmlrpcTest extends ShimTestCase {
	private const PATHS = array('installedpackages/awsha', 'installedpackages/awshaips', 'installedpackages/awsharoutes', 'installedpackages/awshaeips');

	private function withInterfacesAndMapIp(array $answers = array('10.0.12.10' => '10.0.1.10', '10.0.12.20' => '10.0.1.20')): void {
		$this->scenario(array(
		    'interfaces' => array('rc' => 0, 'stdout' => self::interfacesReport()),
		    'map-ip' => array('answers' => $answers),
		));
	}

	private function mapIpRuns(): array {
		return array_values(array_map(function ($r) {
			return $r['argv'];
		}, array_filter($this->fakeRuns(), function ($r) {
			return in_array('map-ip', $r['argv'], true);
		})));
	}

	private static function ipRow(string $vhid, string $ip, string $sync, array $extra = array()): array {
		return array_merge(array('vhid' => $vhid, 'interface' => 'wan', 'ipaddr' => $ip, 'xmlrpcsync' => $sync), $extra);
	}

	/* ---------------- sender ---------------- */

	public function testSendReturnsTheFourConfigPaths(): void {
		$this->withInterfacesAndMapIp();
		$this->assertSame(self::PATHS, awsha_plugin_xmlrpc_send(array()));
	}

	public function testSendAddsTheEniSubnetToSyncedAddressRowsInMemoryOnly(): void {
		$this->withInterfacesAndMapIp();
		$GLOBALS['config']['installedpackages'] = array(
		    'awshaips' => array('config' => array(
		        self::ipRow('wan@1', '10.0.1.10', 'on'),
		        self::ipRow('wan@1', '10.0.1.30', ''),
		        array('vhid' => 'lan@2', 'interface' => 'lan', 'ipaddr' => '10.0.2.10', 'xmlrpcsync' => 'ON'),
		    )),
		    'awshaeips' => array('config' => array(
		        array('vhid' => 'wan@1', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67890', 'interface' => 'wan', 'privateip' => '10.0.1.10', 'xmlrpcsync' => 'on'),
		    )),
		    'awsharoutes' => array('config' => array(
		        array('vhid' => 'wan@1', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'cidr' => '0.0.0.0/0', 'interface' => 'lan', 'xmlrpcsync' => 'on'),
		    )),
		);
		awsha_plugin_xmlrpc_send(array());

		$ips = $GLOBALS['config']['installedpackages']['awshaips']['config'];
		$this->assertSame('10.0.1.0/24', $ips[0]['subnet_cidr']);
		$this->assertArrayNotHasKey('subnet_cidr', $ips[1], 'rows that do not sync carry nothing');
		$this->assertSame('10.0.2.0/24', $ips[2]['subnet_cidr']);
		$this->assertSame('10.0.1.0/24', $GLOBALS['config']['installedpackages']['awshaeips']['config'][0]['subnet_cidr']);
		$this->assertArrayNotHasKey('subnet_cidr', $GLOBALS['config']['installedpackages']['awsharoutes']['config'][0]);
		$this->assertCount(1, $this->fakeRuns(), 'one awsha interfaces for the whole send');
		$this->assertSame(array('--json', 'interfaces'), $this->fakeRuns()[0]['argv']);
	}

	public function testSendWithoutSyncedAddressRowsDoesNotRunAwsha(): void {
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(self::ipRow('wan@1', '10.0.1.10', ''));
		$this->assertSame(self::PATHS, awsha_plugin_xmlrpc_send(array()));
		$this->assertSame(array(), $this->fakeRuns());
	}

	public function testSendStillSendsWhenTheInterfacesCannotBeListed(): void {
		$this->scenario(array('interfaces' => array('rc' => 2, 'stdout' => array('command' => 'interfaces', 'ok' => false, 'error' => 'IMDS unreachable'))));
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(self::ipRow('wan@1', '10.0.1.10', 'on', array('subnet_cidr' => '10.9.9.0/24')));
		$this->assertSame(self::PATHS, awsha_plugin_xmlrpc_send(array()));
		$this->assertArrayNotHasKey('subnet_cidr', $GLOBALS['config']['installedpackages']['awshaips']['config'][0], 'a stale subnet is never sent');
		$this->assertStringContainsString('IMDS unreachable', $this->awshaLines()[0]);
	}

	/* ---------------- receiver ---------------- */

	public function testReceiveTakesSyncedPeerRowsMapsTheirAddressesAndKeepsLocalOnlyRows(): void {
		$this->withInterfacesAndMapIp();
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(
		    self::ipRow('wan@1', '10.0.1.99', 'on'),          // synced earlier: replaced by the peer's
		    self::ipRow('wan@1', '10.0.1.50', ''),            // local only: kept
		);
		$result = awsha_plugin_xmlrpc_recv(array('installedpackages' => array('awshaips' => array('config' => array(
		    self::ipRow('wan@1', '10.0.12.10', 'ON', array('subnet_cidr' => '10.0.12.0/24')),
		    self::ipRow('wan@1', '10.0.12.77', '', array('subnet_cidr' => '10.0.12.0/24')),   // the peer's local row: not taken
		    self::ipRow('wan@1', '10.0.12.20', 'on', array('subnet_cidr' => '10.0.12.0/24')),
		)))));

		$this->assertSame(array('installedpackages/awshaips/config'), array_keys($result));
		$this->assertSame(array(
		    self::ipRow('wan@1', '10.0.1.10', 'ON'),
		    self::ipRow('wan@1', '10.0.1.20', 'on'),
		    self::ipRow('wan@1', '10.0.1.50', ''),
		), $result['installedpackages/awshaips/config']);
		$this->assertSame(array(
		    array('map-ip', '--interface', 'wan', '--from-subnet', '10.0.12.0/24', '10.0.12.10'),
		    array('map-ip', '--interface', 'wan', '--from-subnet', '10.0.12.0/24', '10.0.12.20'),
		), $this->mapIpRuns());
	}

	public function testReceiveLeavesAddressesWhenTheMasksDiffer(): void {
		$this->withInterfacesAndMapIp();
		$result = awsha_plugin_xmlrpc_recv(array('installedpackages' => array(
		    'awshaips' => array('config' => array(self::ipRow('wan@1', '10.0.12.10', 'on', array('subnet_cidr' => '10.0.12.0/25')))),
		    'awshaeips' => array('config' => array(array('vhid' => 'wan@1', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67890', 'interface' => 'wan',
		        'privateip' => '10.0.12.10', 'xmlrpcsync' => 'on', 'subnet_cidr' => '10.0.0.0/16'))),
		)));
		$this->assertSame('10.0.12.10', $result['installedpackages/awshaips/config'][0]['ipaddr']);
		$this->assertSame('10.0.12.10', $result['installedpackages/awshaeips/config'][0]['privateip']);
		$this->assertArrayNotHasKey('subnet_cidr', $result['installedpackages/awshaips/config'][0]);
		$this->assertSame(array(), $this->mapIpRuns());
	}

	public function testReceiveMapsTheElasticIpPrivateAddress(): void {
		$this->withInterfacesAndMapIp();
		$eip = array('vhid' => 'wan@1', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67890', 'interface' => 'wan', 'privateip' => '10.0.12.10', 'xmlrpcsync' => 'on');
		$result = awsha_plugin_xmlrpc_recv(array('installedpackages' => array(
		    'awshaeips' => array('config' => array($eip + array('subnet_cidr' => '10.0.12.0/24'))))));
		$this->assertSame(array(array_merge($eip, array('privateip' => '10.0.1.10'))), $result['installedpackages/awshaeips/config']);
	}

	public function testReceiveTakesRoutesAsSentWithoutMapping(): void {
		$this->withInterfacesAndMapIp();
		$GLOBALS['config']['installedpackages']['awsharoutes']['config'] = array(
		    array('vhid' => 'lan@2', 'routetable' => 'rtb-0000000000000000a', 'cidr' => '10.50.0.0/16', 'interface' => 'lan', 'xmlrpcsync' => ''),
		);
		$peer = array('vhid' => 'wan@1', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'cidr' => '0.0.0.0/0', 'interface' => 'lan', 'xmlrpcsync' => 'on');
		$result = awsha_plugin_xmlrpc_recv(array('installedpackages' => array('awsharoutes' => array('config' => array($peer)))));
		$this->assertSame(array($peer, $GLOBALS['config']['installedpackages']['awsharoutes']['config'][0]), $result['installedpackages/awsharoutes/config']);
		$this->assertSame(array(), $this->fakeRuns(), 'routes carry no address: nothing to look up');
	}

	public function testReceiveKeepsTheAddressWhenThePeerSentNoSubnetOrTheSubnetIsTheSame(): void {
		$this->withInterfacesAndMapIp();
		$result = awsha_plugin_xmlrpc_recv(array('installedpackages' => array('awshaips' => array('config' => array(
		    self::ipRow('wan@1', '10.0.12.10', 'on'),
		    self::ipRow('wan@1', '10.0.1.10', 'on', array('subnet_cidr' => '10.0.1.0/24')),
		)))));
		$this->assertSame(array('10.0.12.10', '10.0.1.10'), array_column($result['installedpackages/awshaips/config'], 'ipaddr'));
		$this->assertSame(array(), $this->mapIpRuns());
		$this->assertStringContainsString('the peer sent no ENI subnet', $this->awshaLines()[0]);
	}

	public function testReceiveKeepsTheAddressWhenMapIpFailsOrTheInterfaceHasNoEniHere(): void {
		$this->withInterfacesAndMapIp(array());
		$result = awsha_plugin_xmlrpc_recv(array('installedpackages' => array('awshaips' => array('config' => array(
		    self::ipRow('wan@1', '10.0.12.10', 'on', array('subnet_cidr' => '10.0.12.0/24')),
		    array('vhid' => 'opt1@3', 'interface' => 'opt1', 'ipaddr' => '10.0.13.10', 'xmlrpcsync' => 'on', 'subnet_cidr' => '10.0.13.0/24'),
		)))));
		$this->assertSame(array('10.0.12.10', '10.0.13.10'), array_column($result['installedpackages/awshaips/config'], 'ipaddr'));
		$this->assertCount(1, $this->mapIpRuns());
		$logged = implode("\n", $this->awshaLines());
		$this->assertStringContainsString('awsha map-ip failed (exit 2)', $logged);
		$this->assertStringContainsString('"opt1" has no ENI subnet on this node', $logged);
	}

	public function testReceiveLeavesTabsThePeerDidNotSendAndEmptiesSyncedRowsOfAnEmptyTab(): void {
		$this->withInterfacesAndMapIp();
		$local = array(self::ipRow('wan@1', '10.0.1.10', 'on'), self::ipRow('wan@1', '10.0.1.50', ''));
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = $local;
		$this->assertSame(array(), awsha_plugin_xmlrpc_recv(array('installedpackages' => array())));
		$this->assertSame(array(), awsha_plugin_xmlrpc_recv(array()));
		$result = awsha_plugin_xmlrpc_recv(array('installedpackages' => array('awshaips' => array())));
		$this->assertSame(array('installedpackages/awshaips/config' => array($local[1])), $result);
	}

	public function testReceiveTakesTheSettingsRowAsSent(): void {
		$settings = array('enable' => '', 'endpoint' => 'https://vpce-0123.ec2.eu-west-1.vpce.amazonaws.com', 'region' => 'eu-west-1');
		$result = awsha_plugin_xmlrpc_recv(array('installedpackages' => array('awsha' => array('config' => array($settings)))));
		$this->assertSame(array('installedpackages/awsha/config' => array($settings)), $result);
		$this->assertSame(array(), awsha_plugin_xmlrpc_recv(array('installedpackages' => array('awsha' => array()))), 'nothing sent, nothing changed');
	}

	public function testReceiveToleratesALoneRowInsteadOfAList(): void {
		$this->withInterfacesAndMapIp();
		$result = awsha_plugin_xmlrpc_recv(array('installedpackages' => array('awshaips' => array('config' =>
		    self::ipRow('wan@1', '10.0.12.10', 'on', array('subnet_cidr' => '10.0.12.0/24'))))));
		$this->assertSame(array(self::ipRow('wan@1', '10.0.1.10', 'on')), $result['installedpackages/awshaips/config']);
	}

	public function testReceiveDoneResyncsTheReconcileJob(): void {
		awsha_plugin_xmlrpc_recv_done(array('installedpackages/awshaips/config'));
		$this->assertCount(1, $this->stubCalls('mwexec'));
		$this->assertStringContainsString('minicron', $this->stubCalls('mwexec')[0][0]);
	}
}
