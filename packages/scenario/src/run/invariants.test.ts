import { describe, expect, it } from 'vitest';
import { SecretRegistry } from '@amlsim/platform';
import { checkInvariants } from './invariants';

describe('no-password-in-vault (S6.2)', () => {
  const vaults = (value: string) => () => [
    { vault: 'ws1kvabc', secret: 'workspace-storage-connection-string', value: 'AccountKey=xyz' },
    { vault: 'amlplatformabc', secret: 'ws1-vm1-ssh-private-key', value },
  ];

  it('holds when no vault holds a password the scenario used', () => {
    const found = checkInvariants([], { secrets: new SecretRegistry(), passwords: ['Correct-Horse-42'], vaultSecrets: vaults('-----BEGIN PRIVATE KEY-----') });
    expect(found).toEqual([]);
  });

  it('names the vault and secret that hold one, wherever in the value', () => {
    const found = checkInvariants([], { secrets: new SecretRegistry(), passwords: ['wrong-one', 'Correct-Horse-42'], vaultSecrets: vaults('user=azureuser;password=Correct-Horse-42') });
    expect(found.map((v) => [v.invariant, v.message])).toEqual([
      ['no-password-in-vault', "key vault 'amlplatformabc' secret 'ws1-vm1-ssh-private-key' holds a password the scenario used"],
    ]);
  });
});
