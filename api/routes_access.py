"""Access: pairing, the paired devices (list, rename, roles, revoke), and the certificate
authority a tablet installs to trust roomctl's HTTPS."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request, Response

from api.auth import COOKIE, LastAdmin, Locked
from api.deps import CurrentDevice, EngineDep, client_address
from api.models import DeviceIn, DeviceOut, ErrorOut, PairIn, PairOut, Responses, TlsOut
from api.security import pairing_cookie

router = APIRouter(tags=["access"])
AUTH: Responses = {401: {"model": ErrorOut, "description": "not paired"}}
ADMIN: Responses = {403: {"model": ErrorOut, "description": "only a clinic admin may do this"}}
E404: Responses = {404: {"model": ErrorOut, "description": "no such device"}}
E409: Responses = {409: {"model": ErrorOut, "description": "it would leave the clinic without an admin"}}
CA_PATH = "/roomctl-ca.crt"


@router.post("/api/pair", response_model=PairOut,
             responses={400: {"model": ErrorOut, "description": "neither PIN nor code given"},
                        401: {"model": ErrorOut, "description": "wrong PIN"},
                        429: {"model": ErrorOut, "description": "too many wrong PINs"}},
             summary="Pair a tablet with the PIN (or the one-time link's code); sets a cookie too")
async def pair(body: PairIn, request: Request, response: Response, eng: EngineDep) -> PairOut:
    if body.pin is None and body.code is None:
        raise HTTPException(400, "give the PIN (pin) or the pairing link's code (code)")
    client = client_address(request)
    try:
        token = eng.auth.pair(client, pin=body.pin, code=body.code, label=body.label)
    except Locked as err:
        raise HTTPException(429, str(err), headers={"Retry-After": str(int(err.retry_after_s) + 1)}) from None
    if token is None:
        raise HTTPException(401, "wrong PIN")
    device = eng.auth.check(token, client)
    assert device is not None
    response.headers["set-cookie"] = pairing_cookie(token, int(eng.auth.idle_s), request.url.scheme == "https")
    return PairOut(token=token, token_id=device.id, role=device.role)


def _out(eng: EngineDep, device_id: str, me: str) -> DeviceOut:
    rec = eng.auth.get(device_id)
    if rec is None:
        raise HTTPException(404, f"no device '{device_id}'")
    return DeviceOut(id=rec.id, name=rec.name, role=rec.role, created_at=rec.created_at,
                     last_seen=rec.last_seen, address=rec.address, this=rec.id == me)


@router.get("/api/devices", response_model=list[DeviceOut], responses=AUTH, summary="Paired devices")
async def devices(eng: EngineDep, me: CurrentDevice) -> list[DeviceOut]:
    return [_out(eng, r.id, me.id) for r in eng.auth.tokens()]


@router.patch("/api/devices/{device_id}", response_model=DeviceOut, responses={**AUTH, **ADMIN, **E404, **E409},
              summary="Rename a device (this one, or any as admin); change a role (admin)")
async def change_device(device_id: str, body: DeviceIn, eng: EngineDep, me: CurrentDevice) -> DeviceOut:
    rec = eng.auth.get(device_id)
    if rec is None:
        raise HTTPException(404, f"no device '{device_id}'")
    if device_id != me.id and not me.is_admin:
        raise HTTPException(403, "only a clinic admin may change another device")
    if body.role is not None and body.role is not rec.role:
        if not me.is_admin:
            raise HTTPException(403, "only a clinic admin may change a role")
        try:
            eng.auth.set_role(device_id, body.role)
        except LastAdmin as err:
            raise HTTPException(409, str(err)) from None
    if body.name is not None:
        eng.auth.rename(device_id, body.name)
    return _out(eng, device_id, me.id)


@router.delete("/api/devices/{device_id}", status_code=204, responses={**AUTH, **ADMIN, **E404, **E409},
               summary="Revoke a device (this one, or any as admin); its open connections close at once")
async def revoke(device_id: str, eng: EngineDep, me: CurrentDevice, response: Response) -> Response:
    if eng.auth.get(device_id) is None:
        raise HTTPException(404, f"no device '{device_id}'")
    if device_id != me.id and not me.is_admin:
        raise HTTPException(403, "only a clinic admin may revoke another device")
    try:
        eng.auth.revoke(device_id)
    except LastAdmin as err:
        raise HTTPException(409, str(err)) from None
    answer = Response(status_code=204)
    if device_id == me.id:
        answer.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return answer


@router.get("/api/tls", response_model=TlsOut, summary="The certificate authority a tablet installs (open)")
async def tls(request: Request) -> TlsOut:
    info = request.app.state.tls
    if info is None:
        return TlsOut(https=False)
    expires = info.not_after.timestamp() if isinstance(info.not_after, dt.datetime) else None
    return TlsOut(https=True, ca_url=CA_PATH if info.ca_file else None, ca_fingerprint=info.ca_fingerprint,
                  certificate_expires=expires)


@router.get(CA_PATH, response_class=Response, include_in_schema=True, tags=["access"],
            responses={200: {"content": {"application/x-x509-ca-cert": {"schema": {"type": "string"}}},
                             "description": "the CA certificate (DER)"},
                       404: {"model": ErrorOut, "description": "no local certificate authority"}},
            summary="Download the local certificate authority, to install once on each tablet (open)")
async def ca_certificate(request: Request) -> Response:
    info = request.app.state.tls
    der = info.ca_der if info is not None else None
    if der is None:
        raise HTTPException(404, "this service uses no local certificate authority")
    return Response(der, media_type="application/x-x509-ca-cert",
                    headers={"Content-Disposition": 'attachment; filename="roomctl-ca.crt"'})
