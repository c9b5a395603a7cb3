"""Drives amlsim's ARM endpoint with the official Azure SDK for Python (Debian's python3-azure),
unchanged: what a platform team's automation does against Azure. Run by
packages/azure/src/azure-sdk.int.test.ts (and usable by hand, docs/azure.md) with
REQUESTS_CA_BUNDLE=<data dir>/tls/ca.crt and the AMLSIM_* variables js-client.mjs reads.
It prints one JSON object of what it observed; never a key or a token."""
import base64
import copy
import json
import os
import pathlib
import uuid

from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.machinelearningservices import MachineLearningServicesMgmtClient
from azure.mgmt.storage import StorageManagementClient

arm = os.environ["AMLSIM_ARM"]
tenant = os.environ["AMLSIM_TENANT"]
sub = os.environ.get("AMLSIM_SUBSCRIPTION", "sub-1")
rg, ws_name = "rg-py", "pyws"
scopes = ["https://management.azure.com/.default"]
poll = 0.25  # the default LRO polling interval is 30 s


def credential(client_id, secret):
    # This azure-identity (1.13.0b2) takes instance_discovery=False; disable_instance_discovery is ignored.
    return ClientSecretCredential(tenant, client_id, secret, authority=arm, instance_discovery=False)


def refusal(call):
    try:
        call()
        return {"refused": False}
    except HttpResponseError as e:
        return {"refused": True, "statusCode": e.status_code, "code": e.error.code if e.error else None}


seen = {}
owner = credential(os.environ["AMLSIM_CLIENT_ID"], os.environ["AMLSIM_CLIENT_SECRET"])
ml = MachineLearningServicesMgmtClient(owner, sub, base_url=arm, credential_scopes=scopes)
ws = ml.workspaces.begin_create_or_update(rg, ws_name, {"location": "eastus"}, polling_interval=poll).result()
seen["workspace"] = {"name": ws.name, "provisioningState": ws.provisioning_state}
keys = ml.workspaces.list_keys(rg, ws_name)
seen["hasUserStorageKey"] = bool(keys.user_storage_key) and len(keys.user_storage_key) > 20
ml.workspaces.begin_resync_keys(rg, ws_name, polling_interval=poll).result()
compute_body = {"location": "eastus", "properties": {"computeType": "AmlCompute", "properties": {"vmSize": "STANDARD_DS2_V2", "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 1}}}}
compute = ml.compute.begin_create_or_update(rg, ws_name, "cpu-py", copy.deepcopy(compute_body), polling_interval=poll).result()
seen["compute"] = {"name": compute.name, "provisioningState": compute.properties.provisioning_state}

code_dir = pathlib.Path(os.environ["AMLSIM_CODE_DIR"]).as_uri()
code = ml.code_versions.create_or_update(rg, ws_name, "train-py", "1", {"properties": {"codeUri": code_dir}})
job_name = "py-job-" + uuid.uuid4().hex[:8]
job = ml.jobs.create_or_update(rg, ws_name, job_name, {"properties": {"jobType": "Command", "command": "node train.js 2", "codeId": code.id, "computeId": compute.id, "environmentId": "azureml:node:1", "experimentName": "py"}})
import time

deadline = time.time() + 150
while job.properties.status not in ("Completed", "Failed", "Canceled") and time.time() < deadline:
    time.sleep(0.5)
    job = ml.jobs.get(rg, ws_name, job_name)
seen["job"] = {"name": job.name, "status": job.properties.status, "properties": job.properties.properties}

model_uri = pathlib.Path(os.environ["AMLSIM_MODEL"]).as_uri()
model = ml.model_versions.create_or_update(rg, ws_name, "py-model", "1", {"properties": {"modelUri": model_uri}})
seen["model"] = {"name": model.name, "read": ml.model_versions.get(rg, ws_name, "py-model", "1").name}

reader = credential(os.environ["AMLSIM_READER_ID"], os.environ["AMLSIM_READER_SECRET"])
token = reader.get_token(*scopes).token
payload = token.split(".")[1]
reader_oid = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["oid"]
auth = AuthorizationManagementClient(owner, sub, base_url=arm, credential_scopes=scopes)
reader_def = next(iter(auth.role_definitions.list(ws.id, filter="roleName eq 'Reader'")))
assignment = auth.role_assignments.create(ws.id, str(uuid.uuid4()), {"role_definition_id": reader_def.id, "principal_id": reader_oid})
seen["assignment"] = {"roleDefinitionId": assignment.role_definition_id, "principalId": assignment.principal_id}
reader_ml = MachineLearningServicesMgmtClient(reader, sub, base_url=arm, credential_scopes=scopes)
seen["readerRead"] = reader_ml.workspaces.get(rg, ws_name).name
seen["readerCreate"] = refusal(lambda: reader_ml.compute.begin_create_or_update(rg, ws_name, "cpu-py2", copy.deepcopy(compute_body), polling_interval=poll).result())

storage = StorageManagementClient(owner, sub, base_url=arm, credential_scopes=scopes)
account = ws.storage_account.split("/")[-1]
before = {k.key_name: k.value for k in storage.storage_accounts.list_keys(rg, account).keys}
after = {k.key_name: k.value for k in storage.storage_accounts.regenerate_key(rg, account, {"key_name": "key2"}).keys}
seen["storage"] = {"key2Changed": before["key2"] != after["key2"], "key1Kept": before["key1"] == after["key1"]}
print(json.dumps(seen))
