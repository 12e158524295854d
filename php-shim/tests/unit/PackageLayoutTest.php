<?php

/* The port's files agree with each other, with pfSense's package rules and with
 * docs/contracts.md §5. */
final class PackageLayoutTest extends ShimTestCase {
	private const PAGES = array(
		'awsha.xml' => 'awsha',
		'awsha_ips.xml' => 'awshaips',
		'awsha_routes.xml' => 'awsharoutes',
		'awsha_eips.xml' => 'awshaeips',
	);

	private static function page(string $file): SimpleXMLElement {
		$xml = simplexml_load_file(AWSHA_PKG_DIR . "/{$file}");
		if ($xml === false) {
			throw new RuntimeException("{$file} is not well-formed XML");
		}
		return $xml;
	}

	/* pfSense's xml_safe_fieldname(): the config key a page's <name> stores under. */
	private static function xmlSafeFieldname(string $name): string {
		return strtolower(str_replace(array('/', '-', ' ', '!', '@', '#', '$', '%', '^', '&', '*', '(', ')', '_', '+', '=', '{', '}', '[', ']', '|', '<', '>', '?', ':', ',', '.', "'", '\\'), '', $name));
	}

	public function testEveryPageStoresExactlyTheDesignedFieldsUnderItsName(): void {
		foreach (self::PAGES as $file => $section) {
			$page = self::page($file);
			$this->assertSame($section, self::xmlSafeFieldname((string)$page->name), $file);
			$this->assertSame('/usr/local/pkg/awsha.inc', (string)$page->include_file, $file);
			$fields = array();
			foreach ($page->fields->field as $field) {
				if ((string)$field->type !== 'listtopic') {
					$fields[] = (string)$field->fieldname;
				}
			}
			$this->assertSame(AWSHA_SECTIONS[$section], $fields, "{$file}: the fields are the config.xml schema of docs/contracts.md §5");
			$this->assertStringContainsString('awsha_resync();', (string)$page->custom_php_resync_config_command, $file);
			$this->assertStringContainsString("awsha_validate_input('{$section}', \$_POST, \$id, \$input_errors);", (string)$page->custom_php_validation_command, $file);
		}
	}

	public function testRequiredFieldsAndChoices(): void {
		$required = array();
		$sources = array();
		foreach (array_slice(self::PAGES, 1, null, true) as $file => $section) {
			foreach (self::page($file)->fields->field as $field) {
				if (isset($field->required)) {
					$required[$section][] = (string)$field->fieldname;
				}
				if ((string)$field->type === 'select_source') {
					$sources[$section][(string)$field->fieldname] = (string)$field->source;
				}
			}
		}
		$this->assertSame(array('vhid', 'routetable', 'cidr', 'interface'), $required['awsharoutes']);
		$this->assertSame(array('vhid', 'interface'), $required['awshaips'], 'an empty address means the VIP\'s');
		$this->assertSame(array('vhid', 'allocationid', 'interface'), $required['awshaeips'], 'an empty private IP means the VIP\'s');
		foreach ($sources as $section => $fields) {
			$this->assertSame('awsha_vhid_options()', $fields['vhid'], $section);
			$this->assertSame('awsha_interface_options()', $fields['interface'], $section);
		}
		$this->assertSame('awsha_privateip_options()', $sources['awshaeips']['privateip']);
		foreach (array('awsha_vhid_options', 'awsha_interface_options', 'awsha_privateip_options') as $function) {
			$this->assertTrue(function_exists($function), $function);
		}
	}

	public function testSettingsPageDeclaresTheHooksAndTheService(): void {
		$page = self::page('awsha.xml');
		$types = array();
		foreach ($page->plugins->item as $item) {
			$types[] = (string)$item->type;
		}
		$this->assertSame(array('plugin_carp'), $types, 'no XMLRPC hook: declaring plugin_xmlrpc_recv breaks core VIP sync on CE 2.8 (XmlrpcSyncTest)');
		/* pkg_call_plugins() calls <configurationfile basename>_<hook>. */
		$info = simplexml_load_file(AWSHA_SHIM_ROOT . '/files/usr/local/share/pfSense-pkg-awsha/info.xml');
		$configurationfile = (string)$info->package->configurationfile;
		$this->assertSame('awsha.xml', $configurationfile);
		foreach ($types as $type) {
			$this->assertTrue(function_exists(basename($configurationfile, '.xml') . "_{$type}"), $type);
		}
		$this->assertSame('awsha', (string)$info->package->logging->facilityname);

		$service = $page->service;
		$this->assertSame("is_pid_running('/var/run/awsha_reconcile.pid')", (string)$service->custom_php_service_status_command);
		$this->assertStringContainsString('awsha_apply_enable();', (string)$service->startcmd);
		$this->assertTrue(isset($service->starts_on_sync), 'rc.start_packages leaves the start to the resync');
		$this->assertStringContainsString('awsha_stop_reconcile();', (string)$service->stopcmd);
		$this->assertStringContainsString('awsha_deinstall();', (string)$page->custom_php_deinstall_command);
		$this->assertSame('on', (string)$page->xpath('//field[fieldname="enable"]/default_value')[0]);
	}

	/* The seed's pages (issue 12 point 9). */
	public function testTheMenuIsSystemAwsHighAvailabilityAndOpensTheIpsTab(): void {
		$menu = self::page('awsha.xml')->menu;
		$this->assertSame(array('AWS High Availability', 'System', '/pkg.php?xml=awsha_ips.xml'),
		    array((string)$menu->name, (string)$menu->section, (string)$menu->url));
		foreach (array('awsha_ips.xml' => 'IPs', 'awsha_routes.xml' => 'Routes', 'awsha_eips.xml' => 'Elastic IPs', 'awsha.xml' => 'Settings') as $file => $tab) {
			$this->assertSame("System/AWS High Availability/{$tab}", (string)self::page($file)->title, $file);
		}
		$priv = file_get_contents(AWSHA_SHIM_ROOT . '/files/etc/inc/priv/awsha.priv.inc');
		$this->assertStringContainsString('WebCfg - System: AWS High Availability', $priv);
	}

	/* Issue 15 point 3: Status > AWS High Availability, its privilege, the dashboard widget. */
	public function testTheStatusPageHasAStatusMenuEntryAPrivilegeAndAWidget(): void {
		$menus = array();
		foreach (self::page('awsha.xml')->menu as $menu) {
			$menus[] = array((string)$menu->name, (string)$menu->section, (string)$menu->url);
		}
		$this->assertSame(array(array('AWS High Availability', 'System', '/pkg.php?xml=awsha_ips.xml'),
		    array('AWS High Availability', 'Status', '/status_awsha.php')), $menus);
		$this->assertFileExists(AWSHA_WWW_DIR . '/status_awsha.php');

		global $priv_list;
		$priv_list = array();
		include(AWSHA_SHIM_ROOT . '/files/etc/inc/priv/awsha.priv.inc');
		$this->assertSame(array('status_awsha.php*'), $priv_list['page-status-awsha']['match']);
		$this->assertSame('WebCfg - Status: AWS High Availability', $priv_list['page-status-awsha']['name']);
		$this->assertNotContains('status_awsha.php*', $priv_list['page-system-awsha']['match'], 'a privilege of its own');

		/* index.php: widgets/widgets/<basename>.widget.php, title in $<basename>_title from any widgets/include/*.inc. */
		$this->assertFileExists(AWSHA_WWW_DIR . '/widgets/widgets/awsha.widget.php');
		include(AWSHA_WWW_DIR . '/widgets/include/widget-awsha.inc');
		$this->assertSame(array('AWS High Availability', 'status_awsha.php'), array($awsha_title, $awsha_title_link));
	}

	public function testTabsAreIpsRoutesElasticIpsThenSettings(): void {
		foreach (array_keys(self::PAGES) as $file) {
			$texts = array();
			foreach (self::page($file)->tabs->tab as $tab) {
				$texts[] = (string)$tab->text;
			}
			$this->assertSame(array('IPs', 'Routes', 'Elastic IPs', 'Settings'), $texts, $file);
		}
	}

	public function testFieldLabelsAreTheSeeds(): void {
		$labels = array(
			'awsha_ips.xml' => array('vhid' => 'CARP VHID', 'interface' => 'Interface', 'ipaddr' => 'Private IP Address', 'xmlrpcsync' => 'XMLRPC Sync'),
			'awsha_routes.xml' => array('vhid' => 'CARP VHID', 'routetable' => 'Route Table ID', 'cidr' => 'Route CIDR', 'interface' => 'Interface',
			    'xmlrpcsync' => 'XMLRPC Sync'),
			'awsha_eips.xml' => array('vhid' => 'CARP VHID', 'allocationid' => 'Elastic IP Allocation ID', 'interface' => 'Interface',
			    'privateip' => 'Private IP Address', 'xmlrpcsync' => 'XMLRPC Sync'),
		);
		foreach ($labels as $file => $expected) {
			$fields = array();
			foreach (self::page($file)->fields->field as $field) {
				if ((string)$field->type !== 'listtopic') {
					$fields[(string)$field->fieldname] = (string)$field->fielddescr;
				}
			}
			$this->assertSame($expected, $fields, $file);
			/* pkg.php: type "interface" shows the interface's description, "checkbox" Yes/No. */
			$columns = array();
			foreach (self::page($file)->adddeleteeditpagefields->columnitem as $column) {
				$columns[(string)$column->fieldname] = array((string)$column->fielddescr, (string)$column->type);
			}
			$want = array();
			foreach ($expected as $name => $label) {
				$want[$name] = array($label, array('interface' => 'interface', 'xmlrpcsync' => 'checkbox')[$name] ?? '');
			}
			$this->assertSame($want, $columns, "{$file}: list columns");
		}
	}

	public function testTheTabsTellWhenTheInterfacesCannotBeListedAndTheEipTabFollowsTheInterface(): void {
		foreach (array('awsha_ips.xml', 'awsha_routes.xml', 'awsha_eips.xml') as $file) {
			$this->assertSame('awsha_gui_after_head();', trim((string)self::page($file)->custom_php_after_head_command), $file);
		}
		$this->assertSame('awsha_gui_after_form();', trim((string)self::page('awsha_eips.xml')->custom_php_after_form_command));
		$this->assertSame('awsha_gui_after_form();', trim((string)self::page('awsha_ips.xml')->custom_php_after_form_command), 'the address suggestions (issue 14)');
	}

	public function testTabsPointAtThePagesAndEachPageMarksItselfActive(): void {
		foreach (self::PAGES as $file => $section) {
			$active = array();
			foreach (self::page($file)->tabs->tab as $tab) {
				$this->assertMatchesRegularExpression('#^/pkg(_edit)?\.php\?xml=(awsha(_ips|_routes|_eips)?\.xml)#', (string)$tab->url);
				preg_match('#xml=([a-z_]+\.xml)#', (string)$tab->url, $m);
				$this->assertArrayHasKey($m[1], self::PAGES);
				if (isset($tab->active)) {
					$active[] = $m[1];
				}
			}
			$this->assertSame(array($file), $active, $file);
		}
	}

	public function testPlistAndMakefileCoverEveryInstalledFile(): void {
		$root = AWSHA_SHIM_ROOT;
		$installed = array();
		$it = new RecursiveIteratorIterator(new RecursiveDirectoryIterator("{$root}/files", FilesystemIterator::SKIP_DOTS));
		foreach ($it as $file) {
			$relative = substr($file->getPathname(), strlen("{$root}/files"));
			if (!in_array($relative, array('/pkg-install.in', '/pkg-deinstall.in'), true)) {
				$installed[] = $relative;
			}
		}
		sort($installed);

		$plist = array();
		foreach (file("{$root}/pkg-plist", FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
			if ($line[0] === '@') {
				continue;
			}
			$line = str_replace('%%DATADIR%%', 'share/pfSense-pkg-awsha', $line);
			$plist[] = ($line[0] === '/') ? $line : "/usr/local/{$line}";
		}
		sort($plist);
		$this->assertSame($installed, $plist);

		$makefile = file_get_contents("{$root}/Makefile");
		$this->assertMatchesRegularExpression('/^PORTNAME=\s*pfSense-pkg-awsha$/m', $makefile);
		foreach ($installed as $path) {
			$source = preg_replace(array('#^/usr/local/share/pfSense-pkg-awsha/#', '#^/usr/local/#'), array('${DATADIR}/', '${PREFIX}/'), $path);
			$this->assertStringContainsString('${FILESDIR}' . $source, $makefile, "the Makefile installs {$path}");
		}
		$this->assertTrue(is_executable("{$root}/files/usr/local/sbin/awsha-run"));
		$this->assertStringStartsWith("#!/usr/local/bin/php -f\n", file_get_contents("{$root}/files/usr/local/sbin/awsha-run"));
	}

	public function testTheBinaryDefaultsToUsrLocalSbinAwsha(): void {
		$proc = proc_open(array(PHP_BINARY, '-r', 'require "awsha.inc"; echo AWSHA_BIN, "\n", AWSHA_RUN, "\n", AWSHA_PHP;'),
		    array(1 => array('pipe', 'w'), 2 => array('pipe', 'w')), $pipes, $this->tmp,
		    array_diff_key(getenv(), array('AWSHA_BIN' => 1, 'AWSHA_RUN' => 1, 'AWSHA_PHP' => 1)));
		$out = stream_get_contents($pipes[1]);
		fclose($pipes[1]);
		fclose($pipes[2]);
		proc_close($proc);
		$this->assertSame("/usr/local/sbin/awsha\n/usr/local/sbin/awsha-run\n/usr/local/bin/php", $out);
	}
}
