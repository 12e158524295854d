<?php

final class GuiOptionsTest extends ShimTestCase {
	public function testVhidChoicesAreTheCarpVipsAsInterfaceAtVhid(): void {
		$this->assertSame(array(
		    array('name' => 'wan@1 - 10.0.1.10 (WAN VIP)', 'value' => 'wan@1'),
		    array('name' => 'lan@2 - 10.0.2.10 (LAN VIP)', 'value' => 'lan@2'),
		), awsha_vhid_options());
	}

	public function testInterfaceChoicesAreOnlyTheEniBackedInterfaces(): void {
		$this->scenario(array('interfaces' => array('stdout' => self::interfacesReport())));
		$this->assertSame(array(
		    array('name' => 'WAN (ena0, eni-0aa11111111111111, 10.0.1.0/24)', 'value' => 'wan'),
		    array('name' => 'LAN (ena1, eni-0bb22222222222222, 10.0.2.0/24)', 'value' => 'lan'),
		), awsha_interface_options());
		$this->assertSame(array('--json', '--deadline', '5', 'interfaces'), $this->fakeRuns()[0]['argv']);
	}

	public function testPrivateIpChoicesAreTheVipDefaultTheEniAddressesAndTheIpsTab(): void {
		$this->scenario(array('interfaces' => array('stdout' => self::interfacesReport())));
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(
		    array('vhid' => 'wan@1', 'interface' => 'wan', 'ipaddr' => '10.0.1.10', 'xmlrpcsync' => 'on'),
		    array('vhid' => 'wan@1', 'interface' => 'wan', 'ipaddr' => '10.0.1.30', 'xmlrpcsync' => 'on'));
		$this->assertSame(array('', '10.0.1.11', '10.0.1.10', '10.0.2.11', '10.0.1.30'), array_column(awsha_privateip_options(), 'value'));
		awsha_interface_options();
		$this->assertCount(1, $this->fakeRuns(), 'one awsha interfaces per page view');
	}

	/* How pkg_edit.php reads a select_source: by reference, through eval — without a notice. */
	public function testChoicesWorkTheWayPkgEditTakesThem(): void {
		$this->scenario(array('interfaces' => array('stdout' => self::interfacesReport())));
		foreach (array('awsha_vhid_options()', 'awsha_interface_options()', 'awsha_privateip_options()') as $source_url) {
			$pkg_source_txt = null;
			eval("\$pkg_source_txt = &$source_url;");
			$this->assertNotEmpty($pkg_source_txt, $source_url);
			foreach ($pkg_source_txt as $opt) {
				$this->assertSame(array('name', 'value'), array_keys($opt));
			}
		}
	}

	public function testWithoutAnswerFromAwshaThereAreNoInterfaceChoices(): void {
		$this->scenario(array('interfaces' => array('rc' => 2, 'stdout' => array('command' => 'interfaces', 'ok' => false, 'error' => 'IMDS unreachable'))));
		$this->assertSame(array(), awsha_interface_options());
		$this->assertSame(array(''), array_column(awsha_privateip_options(), 'value'));
	}
}
