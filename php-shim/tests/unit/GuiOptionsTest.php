<?php

/*
 * The GUI's choices (issue 12 points 7 and 9), taken the way pkg_edit.php
 * takes a select_source (pfsense/pfsense master 9363ac5b86
 * src/usr/local/www/pkg_edit.php "case select_source": eval of the source,
 * then the option whose value equals the field's value is selected — when
 * none does, the browser shows the first one, and a save stores that).
 */
final class GuiOptionsTest extends ShimTestCase {
	protected function setUp(): void {
		parent::setUp();
		$_GET = $_POST = $_REQUEST = array();
		unset($GLOBALS['awsha_gui_error']);
	}

	protected function tearDown(): void {
		$_GET = $_POST = $_REQUEST = array();
		parent::tearDown();
	}

	/* pkg_edit.php's select_source: [options value => name, the value selected or null]. */
	private static function pkgEditSelect(string $source, string $value): array {
		$pkg_source_txt = null;
		eval("\$pkg_source_txt = &$source;");
		$options = array();
		$selected = array();
		foreach ($pkg_source_txt as $opt) {
			$options[$opt['value']] = $opt['name'];
			if (in_array($opt['value'], array($value), true)) {
				$selected[] = $opt['value'];
			}
		}
		return array($options, $selected[0] ?? null);
	}

	/* Editing row $id of a tab (pkg_edit.php?xml=…&act=edit&id=…). */
	private function editing(string $xml, int $id): void {
		$_GET = $_REQUEST = array('xml' => $xml, 'act' => 'edit', 'id' => (string)$id);
	}

	private function withInterfaces(): void {
		$this->scenario(array('interfaces' => array('stdout' => self::interfacesReport())));
	}

	public function testVhidChoicesAreTheCarpVipsAsInterfaceAtVhid(): void {
		$this->assertSame(array(
		    array('name' => 'wan@1 - 10.0.1.10 (WAN VIP)', 'value' => 'wan@1'),
		    array('name' => 'lan@2 - 10.0.2.10 (LAN VIP)', 'value' => 'lan@2'),
		), awsha_vhid_options());
	}

	public function testInterfaceChoicesAreOnlyTheEniBackedInterfaces(): void {
		$this->withInterfaces();
		$this->assertSame(array(
		    array('name' => 'WAN (ena0, eni-0aa11111111111111, 10.0.1.0/24)', 'value' => 'wan'),
		    array('name' => 'LAN (ena1, eni-0bb22222222222222, 10.0.2.0/24)', 'value' => 'lan'),
		), awsha_interface_options());
	}

	/* How pkg_edit.php reads a select_source: by reference, through eval — without a notice. */
	public function testChoicesWorkTheWayPkgEditTakesThem(): void {
		$this->withInterfaces();
		foreach (array('awsha_vhid_options()', 'awsha_interface_options()', 'awsha_privateip_options()') as $source_url) {
			$pkg_source_txt = null;
			eval("\$pkg_source_txt = &$source_url;");
			$this->assertNotEmpty($pkg_source_txt, $source_url);
			foreach ($pkg_source_txt as $opt) {
				$this->assertSame(array('name', 'value'), array_keys($opt));
			}
		}
	}

	/* ---------------- point 7: a deadline, and a message instead of an empty drop-down ---------------- */

	public function testTheBinaryGetsADeadlineOfAFewSecondsAndIsAskedOncePerPage(): void {
		$this->withInterfaces();
		awsha_interface_options();
		awsha_privateip_options();
		$this->assertCount(1, $this->fakeRuns());
		$this->assertSame(array('--json', '--deadline', '5', 'interfaces'), $this->fakeRuns()[0]['argv']);
	}

	public function testAHungBinaryCostsThePageSecondsNotMinutes(): void {
		/* It ignores its own --deadline: the process itself is bounded. */
		$this->scenario(array('interfaces' => array('sleep' => 60, 'stdout' => self::interfacesReport())));
		$started = microtime(true);
		$options = awsha_interface_options();
		$elapsed = microtime(true) - $started;
		$this->assertLessThan(9, $elapsed, 'a page waits AWSHA_GUI_DEADLINE (5 s) plus a little, then goes on');
		$this->assertCount(1, $options);
		$this->assertSame('', $options[0]['value']);
		$this->assertStringContainsString('no answer within', $options[0]['name']);
	}

	public function testAFailureSaysWhyInThePageAndInTheDropDown(): void {
		$this->scenario(array('interfaces' => array('rc' => 2, 'stdout' => array('command' => 'interfaces', 'ok' => false,
		    'error' => 'IMDS meta-data/instance-id: <connection refused>'))));
		$this->editing('awsha_ips.xml', 0);
		ob_start();
		awsha_gui_after_head();
		$page = ob_get_clean();
		$this->assertStringContainsString('IMDS meta-data/instance-id: &lt;connection refused&gt;', $page, 'escaped');
		$this->assertStringContainsString('awsha doctor', $page, 'and where to look');
		$this->assertSame(array('danger'), array_column($this->stubCalls('print_info_box'), 1));
		$options = awsha_interface_options();
		$this->assertSame('', $options[0]['value'], 'nothing to save by mistake: the field is required');
		$this->assertStringContainsString('cannot list the ENI-backed interfaces', $options[0]['name']);
		$this->assertCount(1, $this->fakeRuns(), 'the banner and the drop-down share one run');
	}

	public function testNoMessageWhenAllIsWell(): void {
		$this->withInterfaces();
		$this->editing('awsha_ips.xml', 0);
		ob_start();
		awsha_gui_after_head();
		$this->assertSame('', ob_get_clean());
	}

	/* ---------------- point 9: the Elastic IP's private addresses follow the interface ---------------- */

	private function eipRows(): void {
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(
		    array('vhid' => 'wan@1', 'interface' => 'wan', 'ipaddr' => '10.0.1.10', 'xmlrpcsync' => 'on'),
		    array('vhid' => 'wan@1', 'interface' => 'wan', 'ipaddr' => '10.0.1.30', 'xmlrpcsync' => 'on'),
		    array('vhid' => 'lan@2', 'interface' => 'lan', 'ipaddr' => '10.0.2.10', 'xmlrpcsync' => 'on'),
		);
		$GLOBALS['config']['installedpackages']['awshaeips']['config'] = array(
		    array('vhid' => 'wan@1', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67890', 'interface' => 'lan', 'privateip' => '10.0.2.11', 'xmlrpcsync' => 'on'),
		    array('vhid' => 'wan@1', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67891', 'interface' => 'wan', 'privateip' => '10.0.1.77', 'xmlrpcsync' => 'on'),
		);
	}

	public function testPrivateIpChoicesAreThoseOfTheRowsInterface(): void {
		$this->withInterfaces();
		$this->eipRows();
		$this->editing('awsha_eips.xml', 0);
		[$options, $selected] = self::pkgEditSelect('awsha_privateip_options()', '10.0.2.11');
		$this->assertSame(array('', '10.0.2.11', '10.0.2.10'), array_keys($options), 'lan\'s ENI addresses and the IPs tab\'s lan addresses');
		$this->assertSame('10.0.2.11', $selected);
	}

	public function testANewRowOffersTheFirstInterfacesAddresses(): void {
		$this->withInterfaces();
		$this->eipRows();
		$_GET = $_REQUEST = array('xml' => 'awsha_eips.xml');
		[$options] = self::pkgEditSelect('awsha_privateip_options()', '');
		$this->assertSame(array('', '10.0.1.11', '10.0.1.10', '10.0.1.30'), array_keys($options), 'the interface pkg_edit.php preselects: the first');
	}

	public function testAfterAFailedSaveThePostedInterfaceDecides(): void {
		$this->withInterfaces();
		$this->eipRows();
		$this->editing('awsha_eips.xml', 0);
		$_POST = array('interface' => 'wan', 'privateip' => '10.0.1.30', 'id' => '0');
		[$options, $selected] = self::pkgEditSelect('awsha_privateip_options()', '10.0.1.30');
		$this->assertSame(array('', '10.0.1.11', '10.0.1.10', '10.0.1.30'), array_keys($options));
		$this->assertSame('10.0.1.30', $selected);
	}

	public function testAStoredAddressThatIsNoChoiceStaysSelectedAndSaysSo(): void {
		$this->withInterfaces();
		$this->eipRows();
		$this->editing('awsha_eips.xml', 1);
		[$options, $selected] = self::pkgEditSelect('awsha_privateip_options()', '10.0.1.77');
		$this->assertSame('10.0.1.77', $selected, 'pkg_edit.php would select the first choice, and a save would replace the address');
		$this->assertStringContainsString('not an address of WAN', $options['10.0.1.77']);
	}

	public function testAStoredInterfaceOrVhidThatIsNoChoiceStaysSelected(): void {
		$this->withInterfaces();
		$GLOBALS['config']['installedpackages']['awsharoutes']['config'] = array(
		    array('vhid' => 'opt9@9', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'cidr' => '0.0.0.0/0', 'interface' => 'opt1', 'xmlrpcsync' => 'on'));
		$this->editing('awsha_routes.xml', 0);
		[$options, $selected] = self::pkgEditSelect('awsha_interface_options()', 'opt1');
		$this->assertSame('opt1', $selected);
		$this->assertStringContainsString('no ENI of this instance', $options['opt1']);
		[$options, $selected] = self::pkgEditSelect('awsha_vhid_options()', 'opt9@9');
		$this->assertSame('opt9@9', $selected);
		$this->assertStringContainsString('no such CARP VIP', $options['opt9@9']);
	}

	public function testTheEipPageRefreshesTheAddressesWhenTheInterfaceChanges(): void {
		$this->withInterfaces();
		$this->eipRows();
		$this->editing('awsha_eips.xml', 0);
		ob_start();
		awsha_gui_after_form();
		$script = ob_get_clean();
		$this->assertMatchesRegularExpression('#^<script type="text/javascript">#', $script);
		$this->assertStringContainsString("$('#interface').on('change'", $script);
		$this->assertStringContainsString("$('#privateip')", $script);
		preg_match('#var awsha_addresses = (\{.*?\});#', $script, $m);
		$this->assertSame(array(
		    'wan' => array('10.0.1.11' => '10.0.1.11 (WAN ENI)', '10.0.1.10' => '10.0.1.10 (WAN ENI)', '10.0.1.30' => '10.0.1.30 (IPs tab, wan@1)'),
		    'lan' => array('10.0.2.11' => '10.0.2.11 (LAN ENI)', '10.0.2.10' => '10.0.2.10 (IPs tab, lan@2)'),
		), json_decode($m[1], true));
		$this->assertStringNotContainsString('</script><', substr($script, 0, -9), 'data cannot close the script');
	}

	public function testTheEipScriptIsOnlyOnTheElasticIpPage(): void {
		$this->withInterfaces();
		foreach (array('awsha_ips.xml', 'awsha_routes.xml', 'awsha.xml') as $page) {
			$this->editing($page, 0);
			ob_start();
			awsha_gui_after_form();
			$this->assertStringNotContainsString('#privateip', ob_get_clean(), $page);
		}
		$this->editing('awsha_routes.xml', 0);
		ob_start();
		awsha_gui_after_form();
		$this->assertSame('', ob_get_clean());
	}

	/* ---------------- issue 14 point 5: dual stack ---------------- */

	/* An IPv6 CARP VIP on wan (vhid 5) and an IPv6 IP alias on wan@1; the ENIs carry IPv6 addresses. */
	private function dualStack(): void {
		$GLOBALS['config']['virtualip']['vip'][] = array('mode' => 'carp', 'interface' => 'wan', 'vhid' => '5', 'advskew' => '0', 'advbase' => '1',
		    'uniqid' => '65de65ceb0455', 'descr' => 'WAN IPv6 VIP', 'type' => 'single', 'subnet_bits' => '64', 'subnet' => '2600:1F18:0ABC:4D01:0000::10');
		$GLOBALS['config']['virtualip']['vip'][] = array('mode' => 'ipalias', 'interface' => '_vip65de65ceb0447', 'uniqid' => '65de65ceb0456',
		    'descr' => 'v6 alias', 'type' => 'single', 'subnet_bits' => '64', 'subnet' => '2600:1f18:abc:4d01::20');
		$report = self::interfacesReport();
		$report['interfaces'][0]['ipv6s'] = array('2600:1f18:abc:4d01::11');
		$report['interfaces'][0]['subnet_ipv6_cidrs'] = array('2600:1f18:abc:4d01::/64');
		$report['interfaces'][1]['ipv6s'] = array('2600:1f18:abc:4d02::11');
		$report['interfaces'][1]['subnet_ipv6_cidrs'] = array('2600:1f18:abc:4d02::/64');
		$this->scenario(array('interfaces' => array('stdout' => $report)));
	}

	public function testIpv6CarpVipsAreOfferedAsVhids(): void {
		$this->dualStack();
		$this->assertSame(array(
		    array('name' => 'wan@1 - 10.0.1.10 (WAN VIP)', 'value' => 'wan@1'),
		    array('name' => 'lan@2 - 10.0.2.10 (LAN VIP)', 'value' => 'lan@2'),
		    array('name' => 'wan@5 - 2600:1F18:0ABC:4D01:0000::10 (WAN IPv6 VIP)', 'value' => 'wan@5'),
		), awsha_vhid_options());
	}

	public function testTheIpsTabSuggestsVipsOfBothFamiliesTheirAliasesAndTheEnisAddresses(): void {
		$this->dualStack();
		$this->assertSame(array(
		    'wan' => array(
		        '10.0.1.10' => '10.0.1.10 (CARP VIP wan@1)',
		        '2600:1f18:abc:4d01::10' => '2600:1f18:abc:4d01::10 (CARP VIP wan@5)',
		        '10.0.1.20' => '10.0.1.20 (IP alias on wan@1)',
		        '2600:1f18:abc:4d01::20' => '2600:1f18:abc:4d01::20 (IP alias on wan@1)',
		        '10.0.1.11' => '10.0.1.11 (WAN ENI)',
		        '2600:1f18:abc:4d01::11' => '2600:1f18:abc:4d01::11 (WAN ENI)',
		    ),
		    'lan' => array(
		        '10.0.2.10' => '10.0.2.10 (CARP VIP lan@2)',
		        '10.0.2.11' => '10.0.2.11 (LAN ENI)',
		        '2600:1f18:abc:4d02::11' => '2600:1f18:abc:4d02::11 (LAN ENI)',
		    ),
		), awsha_ip_choices(), 'addresses in RFC 5952 form, as they are stored');

		$this->editing('awsha_ips.xml', 0);
		ob_start();
		awsha_gui_after_form();
		$script = ob_get_clean();
		$this->assertStringStartsWith('<datalist id="awsha_ipaddr_choices"></datalist>', $script);
		$this->assertStringContainsString("$('#ipaddr').attr('list', 'awsha_ipaddr_choices');", $script, 'a suggestion list: the field stays free text');
		$this->assertStringContainsString("$('#interface').on('change', awsha_fill);", $script);
		preg_match('#var awsha_addresses = (\{.*?\});#', $script, $m);
		$this->assertSame(awsha_ip_choices(), json_decode($m[1], true));
		$this->assertCount(1, $this->fakeRuns(), 'one awsha interfaces per page');
	}

	public function testElasticIpChoicesStayIpv4(): void {
		$this->dualStack();
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(
		    array('vhid' => 'wan@5', 'interface' => 'wan', 'ipaddr' => '2600:1f18:abc:4d01::10', 'xmlrpcsync' => 'on'),
		    array('vhid' => 'wan@1', 'interface' => 'wan', 'ipaddr' => '10.0.1.30', 'xmlrpcsync' => 'on'));
		$this->assertSame(array(
		    'wan' => array('10.0.1.11' => '10.0.1.11 (WAN ENI)', '10.0.1.10' => '10.0.1.10 (WAN ENI)', '10.0.1.30' => '10.0.1.30 (IPs tab, wan@1)'),
		    'lan' => array('10.0.2.11' => '10.0.2.11 (LAN ENI)'),
		), awsha_privateip_choices(), 'neither the ENIs\' IPv6 addresses nor the IPs tab\'s');
		$this->editing('awsha_eips.xml', 0);
		$_GET['id'] = $_REQUEST['id'] = null;
		[$options] = self::pkgEditSelect('awsha_privateip_options()', '');
		foreach (array_keys($options) as $value) {
			$this->assertNotSame(6, awsha_ip_family((string)$value), "offered: {$value}");
		}
	}
}
