"""The negative fixtures' expected problems, shared by the loader and schema tests.

Written by hand from the fixture files (tests/fixtures/configs/negative/).
"""

from __future__ import annotations

from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "fixtures" / "configs"
POSITIVE = CONFIGS / "positive"
NEGATIVE = CONFIGS / "negative"

# id (file name without .yml), line, column, path, a phrase of the message,
# schema_level (a plain JSON Schema validator rejects the file too)
NEGATIVE_CASES: list[tuple[str, int, int, str, str, bool]] = [
    ("yaml_syntax", 8, 1, "", "expected ',' or ']'", False),
    ("duplicate_key", 5, 3, "", "duplicate key 'builder'", False),
    ("empty", 1, 1, "", "the config is empty", False),
    ("comments_only", 1, 1, "", "the config is empty", False),
    ("top_level_list", 2, 1, "", "must be a mapping of keys", False),
    ("multi_document", 3, 1, "", "expected a single document", False),
    ("yaml_tag", 3, 11, "timezone", "YAML tag '!tz' is not supported", False),
    ("yaml11_bool_key", 8, 5, "triggers[0]", "key true is a boolean", False),
    ("unknown_key_typo", 3, 1, "buidl", "unknown key 'buidl'; did you mean 'build'?", True),
    ("unknown_key_rule", 9, 7, "build.rules[0].platfroms", "did you mean 'platforms'?", True),
    ("unknown_key_far", 3, 1, "colour", "allowed here: accelerate, build, image,", True),
    ("version_wrong", 1, 10, "version", "must be 1 (got 2)", True),
    ("missing_image", 1, 1, "", "missing required key 'image'", True),
    ("rule_type_enum", 6, 13, "build.rules[0].type", "must be one of: branch, tag (got 'brnach'; did you mean 'branch'?)", True),
    ("rule_missing_tags", 5, 7, "build.rules[0]", "missing required key 'tags'", True),
    ("builder_enum", 4, 12, "build.builder", "must be one of: auto, buildx, buildah (got 'docker')", True),
    ("build_not_mapping", 3, 1, "build", "must be a mapping, not a list", True),
    ("tags_not_list", 8, 13, "build.rules[0].tags", "must be a list, not a string", True),
    ("tags_empty", 8, 13, "build.rules[0].tags", "must not be an empty list", True),
    ("too_many_tags", 8, 13, "build.rules[0].tags", "has 4 tag templates; at most 3 are allowed", True),
    ("too_many_args", 9, 7, "build.rules[0].args", "has 21 build args; at most 20 are allowed", True),
    ("arg_name_invalid", 11, 9, 'build.rules[0].args["1BAD"]', "key '1BAD' is not a valid build arg name", True),
    ("arg_float", 10, 21, "build.rules[0].args.GO_VERSION", 'YAML reads 1.20 as the number 1.2, which loses how it was written; quote it: "1.20"', True),
    ("arg_bool", 9, 21, "build.rules[0].args.DEBUG", 'YAML reads true as a boolean; quote it: "true"', True),
    ("arg_octal_int", 9, 20, "build.rules[0].args.MODE", 'YAML reads 0o755 as the number 493; quote it to keep it as written: "0o755"', False),
    ("arg_null", 10, 9, "build.rules[0].args.EMPTY", 'but is empty; write "" for an empty value', True),
    ("bad_regex", 7, 14, "build.rules[0].match", "is not a valid regular expression: missing ), unterminated subpattern", False),
    ("reserved_group", 7, 14, "build.rules[0].match", "capture group name 'commit' is reserved", False),
    ("unknown_group", 8, 29, "build.rules[0].tags[1]", "${image_tag} is neither a named group of the rule's match nor a built-in", False),
    ("commit_length", 8, 14, "build.rules[0].tags[0]", "${commit:41} needs a length from 1 to 40", False),
    ("template_unclosed", 8, 14, "build.rules[0].tags[0]", "is never closed", False),
    ("platform_bad", 9, 32, "build.rules[0].platforms[1]", "must be os/arch[/variant] in lowercase, e.g. linux/amd64, linux/arm64, linux/arm/v7", True),
    ("platform_duplicate", 9, 45, "build.rules[0].platforms[2]", "duplicate item 'linux/amd64' (the same as item 0)", True),
    ("duplicate_rule_name", 9, 13, "build.rules[1].name", "rule name 'main' is already used by build.rules[0]", False),
    ("name_invalid", 5, 13, "build.rules[0].name", "must be a name of letters, digits", True),
    ("image_with_tag", 2, 8, "image", "must name a repository without tag or digest (write registry.example.com/team/app)", False),
    ("image_invalid", 2, 8, "image", "has an invalid repository path 'Team/App'", False),
    ("timezone_bad", 3, 11, "timezone", 'must be a UTC offset such as "+08:00"', True),
    ("timezone_number", 3, 11, "timezone", 'YAML reads 8 as a number; quote it: "8"', True),
    ("insecure_registry_url", 3, 23, "insecure_registries[0]", "must be a registry host with an optional :port", True),
    ("immutable_not_bool", 3, 17, "immutable_tags", "must be true or false, not a string", True),
    ("scan_report_missing", 3, 1, "scan", "missing required key 'report' (needed with engine: report)", True),
    ("scan_report_wrong_engine", 5, 11, "scan.report", "is only read with engine: report (engine is 'trivy')", False),
    ("scan_severity_enum", 5, 15, "scan.block.severity", "must be one of: unknown, negligible, low, medium, high, critical (got 'severe')", True),
    ("scan_count_zero", 6, 12, "scan.block.count", "must be at least 1 (got 0)", True),
    ("scan_count_float", 5, 12, "scan.block.count", "a whole number without a decimal point (got 1.0)", False),
    ("allow_reason_missing", 6, 9, "scan.block.allow[0]", "missing required key 'reason'", True),
    ("allow_until_not_a_date", 6, 54, "scan.block.allow[0].until", "2027-02-30 is not a real date", False),
    ("allow_until_datetime", 6, 54, "scan.block.allow[0].until", "must be a date written YYYY-MM-DD", True),
    ("backup_with_tag", 5, 13, "scan.on_block.backup", "must name a repository without tag or digest", False),
    ("sync_to_invalid", 5, 9, "sync[0].to", "is not a valid registry[/namespace] for level: namespace", False),
    ("sync_repository_invalid", 5, 9, "sync[0].to", "sync target 'mirror.example.com/team/app:v1' must name a repository without tag", False),
    ("sync_tags_regex", 6, 11, "sync[0].tags", "is not a valid regular expression: unterminated character set", False),
    ("sync_level_enum", 6, 12, "sync[0].level", "did you mean 'namespace'?", True),
    ("sync_duplicate_name", 6, 11, "sync[1].name", "sync destination name 'mirror' is already used by sync[0]", False),
    ("trigger_regexp_needs_match", 4, 5, "triggers[0]", "missing required key 'match' (needed with on: regexp)", True),
    ("trigger_tags_needs_tags", 4, 5, "triggers[0]", "missing required key 'tags' (needed with on: tags)", True),
    ("trigger_match_without_regexp", 6, 12, "triggers[0].match", "is only used with on: regexp (on is all)", False),
    ("trigger_match_regex", 7, 12, "triggers[0].match", "is not a valid regular expression", False),
    ("trigger_secret_env_value", 6, 17, "triggers[0].secret_env", "must be the NAME of an environment variable", True),
    ("trigger_http_token", 5, 10, "triggers[0].url", "plain http to http://hooks.example would send", False),
    ("trigger_scheme", 5, 10, "triggers[0].url", "must be an http:// or https:// URL", False),
    ("trigger_no_host", 5, 10, "triggers[0].url", "has no host after https://", False),
    ("trigger_timeout", 6, 14, "triggers[0].timeout", "must be more than 0 (got 0)", True),
    ("trigger_duplicate_name", 6, 11, "triggers[1].name", "trigger name 'deploy' is already used by triggers[0]", False),
]
