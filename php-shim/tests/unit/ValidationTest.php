<?php

final class ValidationTest extends ShimTestCase {
	private function validateAnswer(bool $ok, array $problems = array(), ?string $error = null): void {
		$report = array('command' => 'validate', 'ok' => $ok, 'problems' => $problems);
		if ($error !== null) {
			$report['error'] = $error;
		}
		$this->scenario(array('validate' => array('rc' => $ok ? 0 : 2, 'stdout' => $report)));
	}

	/* The candidate config the binary was given, parsed back. */
	private function candidate(): SimpleXMLElement {
		$runs = $this->fakeRuns();
		$this->assertCount(1, $runs);
		$this->assertSame(array('--json', '--deadline', '5', '--config'), array_slice($runs[0]['argv'], 0, 4));
		$this->assertSame('validate', $runs[0]['argv'][5]);
		$this->assertFileDoesNotExist($runs[0]['argv'][4], 'the temporary config is removed');
		$xml = simplexml_load_string($runs[0]['config']);
		$this->assertInstanceOf(SimpleXMLElement::class, $xml);
		return $xml;
	}

	public function testAValidNewRowIsAppendedToTheWholeConfigAndPasses(): void {
		$this->validateAnswer(true);
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(
		    array('vhid' => 'lan@2', 'interface' => 'lan', 'ipaddr' => '10.0.2.10', 'xmlrpcsync' => 'on'));
		$post = array('vhid' => 'wan@1', 'interface' => 'wan', 'ipaddr' => ' 10.0.1.10 ', 'xmlrpcsync' => 'on', 'xml' => 'awsha_ips.xml');
		$errors = array();
		awsha_validate_input('awshaips', $post, null, $errors);

		$this->assertSame(array(), $errors);
		$xml = $this->candidate();
		$this->assertSame('pfsense', $xml->getName());
		$this->assertSame('ena0', (string)$xml->interfaces->wan->if);
		$this->assertCount(3, $xml->virtualip->vip);
		$rows = $xml->installedpackages->awshaips->config;
		$this->assertCount(2, $rows);
		$this->assertSame(array('vhid' => 'wan@1', 'interface' => 'wan', 'ipaddr' => '10.0.1.10', 'xmlrpcsync' => 'on'), array_map('strval', (array)$rows[1]));
	}

	public function testProblemsOfTheSavedRowBecomeInputErrorsAndOthersDoNot(): void {
		$this->validateAnswer(false, array(
		    'awshaips row 1 vhid: "wan@9" names no CARP VIP',
		    'awsharoutes row 2 cidr: 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)',
		    'awshaips row 2 ipaddr: "10.0.1.300" is not an IPv4 address',
		    'awshaips row 2 interface: "opt9" is not an interface in config.xml',
		), 'configuration has 4 problems');
		$GLOBALS['config']['installedpackages']['awshaips']['config'] = array(
		    array('vhid' => 'wan@9', 'interface' => 'wan', 'ipaddr' => '10.0.1.10', 'xmlrpcsync' => 'on'));
		$post = array('vhid' => 'wan@1', 'interface' => 'opt9', 'ipaddr' => '10.0.1.300', 'xmlrpcsync' => '');
		$errors = array();
		awsha_validate_input('awshaips', $post, null, $errors);
		$this->assertSame(array(
		    'awshaips row 2 ipaddr: "10.0.1.300" is not an IPv4 address',
		    'awshaips row 2 interface: "opt9" is not an interface in config.xml',
		), $errors);
	}

	public function testOnlyProblemsElsewhereDoNotBlockTheSave(): void {
		$this->validateAnswer(false, array('awshaeips row 1 allocationid: "eipalloc-xyz" is not an allocation id'), 'configuration has 1 problem');
		$post = array('vhid' => 'wan@1', 'interface' => 'wan', 'ipaddr' => '10.0.1.10', 'xmlrpcsync' => 'on');
		$errors = array();
		awsha_validate_input('awshaips', $post, null, $errors);
		$this->assertSame(array(), $errors);
	}

	public function testEditingARowReplacesItInPlace(): void {
		$this->validateAnswer(false, array('awsharoutes row 1 routetable: "rtb-1" is not a route table id'), 'configuration has 1 problem');
		$GLOBALS['config']['installedpackages']['awsharoutes']['config'] = array(
		    array('vhid' => 'wan@1', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'cidr' => '0.0.0.0/0', 'interface' => 'lan', 'xmlrpcsync' => 'on'),
		    array('vhid' => 'lan@2', 'routetable' => 'rtb-0000000000000000a', 'cidr' => '10.50.0.0/16', 'interface' => 'lan', 'xmlrpcsync' => ''));
		$post = array('vhid' => 'wan@1', 'routetable' => 'rtb-1', 'cidr' => '0.0.0.0/0', 'interface' => 'lan', 'xmlrpcsync' => 'on');
		$errors = array();
		awsha_validate_input('awsharoutes', $post, '0', $errors);
		$this->assertSame(array('awsharoutes row 1 routetable: "rtb-1" is not a route table id'), $errors);
		$rows = $this->candidate()->installedpackages->awsharoutes->config;
		$this->assertCount(2, $rows);
		$this->assertSame('rtb-1', (string)$rows[0]->routetable);
		$this->assertSame('rtb-0000000000000000a', (string)$rows[1]->routetable);
	}

	public function testAnEmptyPrivateIpDefaultsToTheVipAddress(): void {
		$this->validateAnswer(true);
		$post = array('vhid' => 'wan@1', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67890', 'interface' => 'wan', 'privateip' => '', 'xmlrpcsync' => 'on');
		$errors = array();
		awsha_validate_input('awshaeips', $post, null, $errors);
		$this->assertSame(array(), $errors);
		$this->assertSame('10.0.1.10', $post['privateip'], 'pkg_edit.php saves $_POST after validation');
		$this->assertSame('10.0.1.10', (string)$this->candidate()->installedpackages->awshaeips->config[0]->privateip);
	}

	public function testAnEmptyIpAddressDefaultsToTheVipAddressAndAChosenOneIsKept(): void {
		$this->validateAnswer(true);
		$post = array('vhid' => 'lan@2', 'interface' => 'lan', 'ipaddr' => '', 'xmlrpcsync' => 'on');
		$errors = array();
		awsha_validate_input('awshaips', $post, null, $errors);
		$this->assertSame('10.0.2.10', $post['ipaddr']);

		$post = array('vhid' => '_vip65de65ceb0447', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67890', 'interface' => 'wan', 'privateip' => '', 'xmlrpcsync' => '');
		awsha_validate_input('awshaeips', $post, null, $errors);
		$this->assertSame('10.0.1.10', $post['privateip'], 'the _vip<uniqid> form is understood too');

		$post = array('vhid' => 'wan@1', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67890', 'interface' => 'wan', 'privateip' => '10.0.1.11', 'xmlrpcsync' => '');
		awsha_validate_input('awshaeips', $post, null, $errors);
		$this->assertSame('10.0.1.11', $post['privateip']);
	}

	public function testSettingsProblemsAreReported(): void {
		$this->validateAnswer(false, array('awsha row 1 endpoint: "ftp://x" is not an http(s) URL', 'awshaips row 1 vhid: "x@1" names no CARP VIP'), 'configuration has 2 problems');
		$post = array('enable' => 'on', 'endpoint' => 'ftp://x', 'region' => '');
		$errors = array();
		awsha_validate_input('awsha', $post, '0', $errors);
		$this->assertSame(array('awsha row 1 endpoint: "ftp://x" is not an http(s) URL'), $errors);
		$settings = $this->candidate()->installedpackages->awsha->config;
		$this->assertCount(1, $settings);
		$this->assertSame('ftp://x', (string)$settings[0]->endpoint);
	}

	public function testAnErrorWithoutProblemsBlocksTheSave(): void {
		$this->validateAnswer(false, array(), 'cannot parse the configuration: unexpected end of file');
		$post = array('enable' => 'on', 'endpoint' => '', 'region' => '');
		$errors = array();
		awsha_validate_input('awsha', $post, '0', $errors);
		$this->assertSame(array('awsha validate: cannot parse the configuration: unexpected end of file'), $errors);
	}

	public function testABinaryThatGivesNoReportBlocksTheSave(): void {
		$this->scenario(array('validate' => array('rc' => 101, 'stdout' => '', 'stderr' => "thread 'main' panicked\n")));
		$post = array('enable' => 'on', 'endpoint' => '', 'region' => '');
		$errors = array();
		awsha_validate_input('awsha', $post, '0', $errors);
		$this->assertCount(1, $errors);
		$this->assertStringStartsWith('Could not validate with awsha: awsha --config ', $errors[0]);
		$this->assertStringContainsString("exited 101 without a JSON report: thread 'main' panicked", $errors[0]);
	}

	public function testAnEmptyInstalledpackagesElementAndGappedRowKeysAreHandled(): void {
		$this->validateAnswer(true);
		$GLOBALS['config']['installedpackages'] = '';
		$post = array('vhid' => 'wan@1', 'interface' => 'wan', 'ipaddr' => '10.0.1.10', 'xmlrpcsync' => 'on');
		$errors = array();
		awsha_validate_input('awshaips', $post, null, $errors);
		$this->assertSame(array(), $errors);
		$this->assertCount(1, $this->candidate()->installedpackages->awshaips->config);

		/* pkg.php unset()s a deleted row: keys 0 and 2 are still two rows. */
		$this->assertSame(array(array('a' => '1'), array('a' => '2')), awsha_row_list(array(0 => array('a' => '1'), 2 => array('a' => '2'))));
		$this->assertSame(array(array('a' => '1')), awsha_row_list(array('a' => '1')), 'a lone row');
		$this->assertSame(array(), awsha_row_list(array('')), 'an empty <config/>');
		$this->assertSame(array(), awsha_row_list(''));
	}

	public function testDeletingDoesNotValidate(): void {
		$post = array('act' => 'del', 'id' => '0');
		$errors = array();
		awsha_validate_input('awshaips', $post, '0', $errors);
		$this->assertSame(array(), $errors);
		$this->assertSame(array(), $this->fakeRuns());
	}

	/* The real binary names the file before each problem: the temporary file's name is dropped, the row's problem kept. */
	public function testProblemsAsTheBinaryWritesThemWithTheFileFirstAreMatched(): void {
		$script = "{$this->tmp}/validate-echo";
		file_put_contents($script, "#!/bin/sh\n" .
		    'for a; do c="$p"; p="$a"; done' . "\n" .
		    'printf \'{"command":"validate","ok":false,"error":"1 problem in %s","problems":["%s: awsharoutes row 1 cidr: \\"10.0.0.1/8\\" has host bits set; did you mean 10.0.0.0/8?"]}\\n\' "$c" "$c"' . "\n" .
		    "exit 2\n");
		chmod($script, 0755);
		$post = array('vhid' => 'wan@1', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'cidr' => '10.0.0.1/8', 'interface' => 'lan', 'xmlrpcsync' => 'on');
		$errors = array();
		[, $out] = self::runProgram(array(PHP_BINARY, '-r', 'require "awsha.inc"; $post = json_decode($argv[1], true); $errors = array(); ' .
		    'awsha_validate_input("awsharoutes", $post, null, $errors); echo json_encode($errors);', json_encode($post)),
		    $this->tmp, array_merge(getenv(), array('AWSHA_BIN' => $script)));
		$this->assertSame(array('awsharoutes row 1 cidr: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?'), json_decode($out, true),
		    'the save is refused with the row\'s own problem');
	}

	/* Issue 14 point 5: what is stored is the form the binary uses (docs/contracts.md §5.5). */
	public function testIpv6AndPrefixListInputIsStoredInTheFormTheBinaryUses(): void {
		$this->validateAnswer(true);
		$cases = array(
		    array('awsharoutes', 'cidr', ' 2600:1F18:ABCD:EF00:0000:0000:0000:0000/056 ', '2600:1f18:abcd:ef00::/56'),
		    array('awsharoutes', 'cidr', '::/0', '::/0'),
		    array('awsharoutes', 'cidr', 'PL-0123456789ABCDEF0', 'pl-0123456789abcdef0'),
		    array('awsharoutes', 'cidr', 'pl-12ab34CD', 'pl-12ab34cd'),
		    array('awsharoutes', 'cidr', '0.0.0.0/0', '0.0.0.0/0'),
		    array('awsharoutes', 'cidr', '2600:1f18::1/129', '2600:1f18::1/129'),
		    array('awsharoutes', 'cidr', 'pl-xyz', 'pl-xyz'),
		    array('awshaips', 'ipaddr', '2600:1F18:0ABC:4D01:0000:0000:0000:0010', '2600:1f18:abc:4d01::10'),
		    array('awshaips', 'ipaddr', '2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'),
		    array('awshaips', 'ipaddr', '10.0.1.10', '10.0.1.10'),
		    array('awshaeips', 'privateip', '2600:1F18:0ABC:4D01::10', '2600:1F18:0ABC:4D01::10'),
		);
		foreach ($cases as [$section, $field, $typed, $stored]) {
			$post = array('vhid' => 'wan@1', 'interface' => 'lan', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'allocationid' => 'eipalloc-0a1b2c3d4e5f67890',
			    $field => $typed, 'xmlrpcsync' => 'on');
			$errors = array();
			awsha_validate_input($section, $post, null, $errors);
			$this->assertSame($stored, $post[$field], "{$section} {$field} {$typed}: pkg_edit.php saves \$_POST after validation");
		}
		/* The binary saw the stored form, and it decides: a bad one still reaches it as typed. */
		$runs = $this->fakeRuns();
		$this->assertStringContainsString('<cidr>2600:1f18:abcd:ef00::/56</cidr>', $runs[0]['config']);
		$this->assertStringContainsString('<cidr>2600:1f18::1/129</cidr>', $runs[5]['config']);
	}

	public function testBadIpv6AndPrefixListProblemsOfTheRowAreShown(): void {
		$this->validateAnswer(false, array(
		    'awsharoutes row 1 cidr: "2600:1f18::1/64" has host bits set; did you mean 2600:1f18::/64?',
		), '1 problem');
		$post = array('vhid' => 'wan@1', 'routetable' => 'rtb-05ed6e7c46531c6c3', 'cidr' => '2600:1F18::1/64', 'interface' => 'lan', 'xmlrpcsync' => 'on');
		$errors = array();
		awsha_validate_input('awsharoutes', $post, null, $errors);
		$this->assertSame(array('awsharoutes row 1 cidr: "2600:1f18::1/64" has host bits set; did you mean 2600:1f18::/64?'), $errors);
	}

	public function testXmlEncodingRoundTripsAwkwardText(): void {
		$config = array('a' => array('b' => array('<&>"\' é', "two\nlines"), 'c' => array(), 't' => true, 'f' => false));
		$xml = simplexml_load_string(awsha_xml_encode($config, 'pfsense'));
		$this->assertSame('<&>"\' é', (string)$xml->a->b[0]);
		$this->assertSame("two\nlines", (string)$xml->a->b[1]);
		$this->assertSame('', (string)$xml->a->c);
		$this->assertSame('', (string)$xml->a->t);
		$this->assertCount(0, $xml->a->f);
	}
}
