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

	/* The parts awsha.inc loads, one concern each (issue 13), in its require_once order. */
	private const PARTS = array('awsha_exec.inc', 'awsha_net.inc', 'awsha_service.inc', 'awsha_sync.inc', 'awsha_gui.inc',
	    'awsha_validate.inc', 'awsha_notices.inc', 'awsha_followup.inc', 'awsha_run.inc');

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

	/*
	 * Issue 13: /usr/local/pkg holds awsha.inc (the entry every page, the
	 * service, exec_php and awsha-run load), its parts and awsha_status.inc
	 * (the status page's); each file says in its header what it owns, and
	 * awsha.inc's header maps them all.
	 */
	public function testThePhpIsFilesOfOneConcernEachSayingWhatItOwns(): void {
		$incs = array_map('basename', glob(AWSHA_PKG_DIR . '/*.inc'));
		sort($incs);
		$want = array_merge(array('awsha.inc', 'awsha_status.inc'), self::PARTS);
		sort($want);
		$this->assertSame($want, $incs);
		$entry = file_get_contents(AWSHA_PKG_DIR . '/awsha.inc');
		$map = substr($entry, 0, strpos($entry, '*/'));
		foreach ($incs as $file) {
			$text = file_get_contents(AWSHA_PKG_DIR . "/{$file}");
			$this->assertStringStartsWith("<?php\n/*\n * {$file}\n *\n * part of awsha (pfSense-pkg-awsha)\n", $text, $file);
			$this->assertMatchesRegularExpression('#LICENSE-2\.0\n \*\n( \* \S.*\n){3,}#', $text, "{$file}: a paragraph on what it owns");
			if ($file !== 'awsha.inc') {
				$this->assertMatchesRegularExpression('/^ \*   ' . preg_quote($file, '/') . ' +\S/m', $map, "awsha.inc's map names {$file}");
				$this->assertMatchesRegularExpression('#^ \*/\n\nrequire_once\("awsha\.inc"\);\n#m', $text, "{$file} loads the entry first");
			}
		}
		preg_match_all('/^require_once\("(awsha_[a-z]+\.inc)"\);$/m', $entry, $m);
		$this->assertSame(self::PARTS, $m[1], 'awsha.inc loads every part (and not the status page\'s awsha_status.inc)');
		$this->assertSame(1, preg_match_all("/^\\s*define\\('AWSHA_BIN'/m", $entry), 'AWSHA_BIN is the entry\'s');
		$makefile = file_get_contents(AWSHA_SHIM_ROOT . '/Makefile');
		foreach ($incs as $file) {
			$this->assertSame(1, substr_count($makefile, "\t\${INSTALL_DATA} -m 0644 \${FILESDIR}\${PREFIX}/pkg/{$file} \\\n\t\t\${STAGEDIR}\${PREFIX}/pkg\n"),
			    "{$file}: installed once, 0644 like its neighbours");
		}
		/* The hooks pfSense calls by name live in the file it loads. */
		foreach (array('awsha_plugin_carp', 'awsha_plugin_xmlrpc_send', 'awsha_plugin_xmlrpc_recv', 'awsha_plugin_xmlrpc_recv_done',
		    'awsha_resync', 'awsha_deinstall') as $function) {
			$this->assertSame(AWSHA_PKG_DIR . '/awsha.inc', (new ReflectionFunction($function))->getFileName(), $function);
		}
	}

	/*
	 * Whichever file is loaded first — awsha.inc by name or by the absolute
	 * path of <include_file>, or any part by name through the include path —
	 * the whole shim is there, with no warning (no constant defined twice).
	 */
	public function testEveryFileLoadedFirstLoadsTheWholeShim(): void {
		$code = 'require_once($argv[1]); $f = get_defined_functions()["user"]; sort($f); $c = get_defined_constants(true)["user"]; ksort($c); '
		    . 'echo json_encode(array(array_values(preg_grep("/^awsha_(?!stub_)/", $f)), $c));';
		$loaded = array();
		foreach (array_merge(array('awsha.inc', AWSHA_PKG_DIR . '/awsha.inc'), self::PARTS) as $first) {
			[$rc, $out, $err] = self::runProgram(array(PHP_BINARY, '-d', 'error_reporting=-1', '-d', 'display_errors=stderr', '-r', $code, $first), $this->tmp);
			$this->assertSame(0, $rc, "{$first}: {$err}");
			$this->assertSame('', $err, $first);
			$loaded[$first] = json_decode($out, true);
		}
		[$functions, $constants] = $loaded['awsha.inc'];
		foreach ($loaded as $first => $what) {
			$this->assertSame($loaded['awsha.inc'], $what, "{$first} loaded first");
		}
		$this->assertContains('awsha_plugin_carp', $functions);
		$this->assertContains('awsha_run_main', $functions);
		$this->assertArrayHasKey('AWSHA_BIN', $constants);
		/* This process (bootstrap.php: awsha.inc, then awsha_status.inc) has the same, and the status page's besides. */
		$here = array_values(preg_grep('/^awsha_(?!stub_)/', get_defined_functions()['user']));
		$this->assertSame(array(), array_values(array_diff($functions, $here)));
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
		[, $out] = self::runProgram(array(PHP_BINARY, '-r', 'require "awsha.inc"; echo AWSHA_BIN, "\n", AWSHA_RUN, "\n", AWSHA_PHP;'),
		    $this->tmp, array_diff_key(getenv(), array('AWSHA_BIN' => 1, 'AWSHA_RUN' => 1, 'AWSHA_PHP' => 1)));
		$this->assertSame("/usr/local/sbin/awsha\n/usr/local/sbin/awsha-run\n/usr/local/bin/php", $out);
	}
}
