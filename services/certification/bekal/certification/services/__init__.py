"""The certification service's use cases, one module per noun (as ``api/`` is split):

- ``keys``: the issuer (``Issuer``), its signing keys and its did:web document
- ``issuing``: a certificate for each completed enrollment, alone or in a batch
- ``reading``: one certificate, a page of them (searched), a session's, for staff
- ``printing``: one certificate's PDF, or one PDF of a session's valid certificates
- ``verification``: the public check by code, by number and name, or of a presented credential
- ``revocation``: revoking, and re-issuing under a corrected name
- ``corrections``: reacting to training's corrections of an outcome or an enrollment
- ``status_list``: places in the Bitstring Status List, and the signed list
- ``erasure``: forgetting a person, and merging two records of one person
- ``common``: numbering and signing, shared by issuing and re-issuing

Import from the module a function lives in; nothing is re-exported here.
"""
