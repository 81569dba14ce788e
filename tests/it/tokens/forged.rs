//! Forged and tampered tokens on the protected routes: every change to a real token's header
//! or claims is refused, whatever it claims. The changes made one field at a time are one
//! table, [`forgeries`], each case signed with the issuer's own secret so that only the
//! changed field differs from a real token.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::*;

/// The token is accepted on the geocoder.
async fn assert_accepted(s: &Server, header: &Value, claims: &Value) {
    s.call(GEOCODE, &sign_raw(header, claims)).await.assert_ok();
}

#[tokio::test]
async fn a_hand_signed_token_with_the_real_claims_is_accepted() {
    let s = Server::new();
    // Through the jsonwebtoken encoder, with the typed claims…
    let token = sign_typed(&typed_header(), &valid_claims(&s));
    s.call(GEOCODE, &token).await.assert_ok();
    s.call(PROFILE, &token).await.assert_ok();
    // …and byte by byte, as the attacks below are built.
    let token = sign_raw(&valid_header(), &valid_claims_json(&s));
    s.call(GEOCODE, &token).await.assert_ok();
    s.call(PROFILE, &token).await.assert_ok();
}

#[tokio::test]
async fn alg_none_is_refused_in_any_case() {
    let s = Server::new();
    let claims = valid_claims_json(&s);
    assert_accepted(&s, &valid_header(), &claims).await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": ISSUER_KID});
        let message = format!("{}.{}", b64_json(&header), b64_json(&claims));
        for signature in [
            String::new(),
            URL_SAFE_NO_PAD.encode("bogus signature"),
            hmac(&message, &ISSUER_SECRET),
        ] {
            let reply = s.call(GEOCODE, &format!("{message}.{signature}")).await;
            reply.assert_invalid_token();
        }
    }
}

#[tokio::test]
async fn an_hs256_token_is_refused_by_an_issuer_pinned_to_es256() {
    let s = Server::builder().signing_key(es256("ec1")).build();
    // The issuer's own ES256 tokens work.
    let token = s.token().await;
    assert_eq!(decode_part(&parts(&token)[0])["alg"], "ES256");
    s.call(GEOCODE, &token).await.assert_ok();
    // The same claims under HS256, keyed with the public key (the classic confusion) or
    // with anything else, are refused.
    let claims = decode_part(&parts(&token)[1]);
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "ec1"});
    for secret in [ES256_PUBLIC_PEM.as_bytes(), &ISSUER_SECRET] {
        let forged = hmac_signed(&header, &claims, secret);
        s.call(GEOCODE, &forged).await.assert_invalid_token();
    }
}

#[tokio::test]
async fn a_tampered_scope_is_refused() {
    let s = Server::new();
    let form = format!(
        "{}&scope=Evaluator",
        post_form(s.native_id().as_str(), &s.native_secret())
    );
    let body = assert_token_response(&s.send(token_request(&form)).await);
    let token = access_token(&body);
    s.call(GEOCODE, &token).await.assert_ok();
    assert_insufficient_role(&s.call(PROFILE, &token).await);
    let [header, payload, signature] = parts(&token);
    let mut claims = decode_part(&payload);
    claims["scope"] = json!("Evaluator User");
    let tampered = format!("{header}.{}.{signature}", b64_json(&claims));
    s.call(PROFILE, &tampered).await.assert_invalid_token();
    s.call(GEOCODE, &tampered).await.assert_invalid_token();
}

#[tokio::test]
async fn a_tampered_subject_is_refused() {
    let s = Server::new();
    let (other, _) = s.native_client(ClientSpec::native("Other"));
    let token = s.token().await;
    s.call(GEOCODE, &token).await.assert_ok();
    let [header, payload, signature] = parts(&token);
    let mut claims = decode_part(&payload);
    claims["sub"] = json!(other.as_str());
    let tampered = format!("{header}.{}.{signature}", b64_json(&claims));
    s.call(GEOCODE, &tampered).await.assert_invalid_token();
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let s = Server::new();
    let token = s.token().await;
    let [header, payload, signature] = parts(&token);
    let mut flipped = signature.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ASCII");
    let message = format!("{header}.{payload}");
    for signature in [
        flipped,
        hmac(&message, &[8u8; 32]),
        String::new(),
        format!("{signature}A"),
    ] {
        s.call(GEOCODE, &format!("{message}.{signature}"))
            .await
            .assert_invalid_token();
    }
    s.call(GEOCODE, &token).await.assert_ok();
}

#[tokio::test]
async fn a_token_is_refused_once_expired() {
    let s = Server::new();
    let token = s.token().await;
    s.clock.advance(secs(3600));
    let reply = s.call(GEOCODE, &token).await;
    reply.assert_invalid_token();
    assert_eq!(reply.kind(), RejectionKind::Expired);
}

/// What the layer must do with a token after one [`Forgery`].
#[derive(Debug, Clone, Copy)]
enum Verdict {
    /// Admit it: the change stays within what the verifier tolerates.
    Accepted,
    /// Refuse it with 401 `invalid_token`, for this reason when one is given.
    Refused(Option<RejectionKind>),
}

/// One change to the header or the claims of an otherwise valid token.
struct Forgery {
    /// The case, as the sentence a failure names it by.
    case: &'static str,
    /// Changes the header and the claims; the last argument is the server's time in Unix
    /// seconds.
    change: fn(&mut Value, &mut Value, i64),
    /// For a header field jsonwebtoken parses: it must still be there once parsed, so that
    /// the refusal comes from the header check and not from a parse error.
    parsed: Option<fn(&Header) -> bool>,
    verdict: Verdict,
}

/// Removes `field` from a JSON object.
fn remove(object: &mut Value, field: &str) {
    object.as_object_mut().expect("a JSON object").remove(field);
}

/// Every single-field forgery, with what the layer must answer.
fn forgeries() -> Vec<Forgery> {
    use Verdict::{Accepted, Refused};
    let refused = Refused(None);
    let expired = Refused(Some(RejectionKind::Expired));
    let case = |case, change, verdict| Forgery {
        case,
        change,
        parsed: None,
        verdict,
    };
    vec![
        case(
            "an RS256 header over an HMAC signature",
            |h, _, _| h["alg"] = json!("RS256"),
            refused,
        ),
        case(
            "an ES256 header over an HMAC signature",
            |h, _, _| h["alg"] = json!("ES256"),
            refused,
        ),
        case(
            "a typ other than at+jwt",
            |h, _, _| h["typ"] = json!("JWT"),
            refused,
        ),
        case("a missing typ", |h, _, _| remove(h, "typ"), refused),
        case("an unknown kid", |h, _, _| h["kid"] = json!("k9"), refused),
        case("a missing kid", |h, _, _| remove(h, "kid"), refused),
        Forgery {
            case: "a jku header pointing at the attacker's keys",
            change: |h, _, _| h["jku"] = json!("https://attacker.example/jwks.json"),
            parsed: Some(|h| h.jku.is_some()),
            verdict: refused,
        },
        Forgery {
            case: "an x5u header pointing at the attacker's certificate",
            change: |h, _, _| h["x5u"] = json!("https://attacker.example/cert.pem"),
            parsed: Some(|h| h.x5u.is_some()),
            verdict: refused,
        },
        Forgery {
            // The very secret the token is signed with, offered as the key to check it with.
            case: "an embedded jwk header holding the signing secret",
            change: |h, _, _| {
                h["jwk"] = json!({
                    "kty": "oct",
                    "k": URL_SAFE_NO_PAD.encode(ISSUER_SECRET),
                    "alg": "HS256",
                });
            },
            parsed: Some(|h| h.jwk.is_some()),
            verdict: refused,
        },
        case(
            "an x5c header",
            |h, _, _| h["x5c"] = json!(["MIIB"]),
            refused,
        ),
        case(
            "a crit header",
            |h, _, _| h["crit"] = json!(["exp"]),
            refused,
        ),
        case(
            "a wrong issuer",
            |_, c, _| c["iss"] = json!("https://attacker.example"),
            refused,
        ),
        case("a missing issuer", |_, c, _| remove(c, "iss"), refused),
        case(
            "a wrong audience",
            |_, c, _| c["aud"] = json!("another-api"),
            refused,
        ),
        case("a missing audience", |_, c, _| remove(c, "aud"), refused),
        case(
            "a string exp",
            |_, c, _| c["exp"] = json!("9999999999"),
            refused,
        ),
        case(
            "an exp of u64::MAX",
            |_, c, _| c["exp"] = json!(u64::MAX),
            refused,
        ),
        case(
            "an exp of 1e300",
            |_, c, _| c["exp"] = json!(1e300),
            refused,
        ),
        case("an exp of -1", |_, c, _| c["exp"] = json!(-1), refused),
        case(
            "an exp of i64::MIN",
            |_, c, _| c["exp"] = json!(i64::MIN),
            refused,
        ),
        case(
            "an exp one second ahead",
            |_, c, now| c["exp"] = json!(now + 1),
            Accepted,
        ),
        case(
            "an exp at the exact second of iat",
            |_, c, _| c["exp"] = c["iat"].clone(),
            expired,
        ),
        case(
            "an nbf five seconds ahead, within the leeway",
            |_, c, now| c["nbf"] = json!(now + 5),
            Accepted,
        ),
        case(
            "an nbf six seconds ahead, beyond the leeway",
            |_, c, now| c["nbf"] = json!(now + 6),
            refused,
        ),
        case(
            "an iat five seconds ahead, within the leeway",
            |_, c, now| c["iat"] = json!(now + 5),
            Accepted,
        ),
        case(
            "an iat six seconds ahead, beyond the leeway",
            |_, c, now| c["iat"] = json!(now + 6),
            refused,
        ),
    ]
}

/// Signs the valid header and claims and checks that token is admitted; then signs them
/// again after the forgery's change and checks the layer's verdict on that one, on a server
/// of its own.
async fn check(forgery: &Forgery) -> Result<(), String> {
    let s = Server::new();
    let (mut header, mut claims) = (valid_header(), valid_claims_json(&s));
    let control = sign_raw(&header, &claims);
    let reply = s.call(GEOCODE, &control).await;
    if reply.status != StatusCode::OK {
        return Err(format!(
            "the unchanged token is refused: {}",
            reply.describe()
        ));
    }
    (forgery.change)(&mut header, &mut claims, s.now());
    let forged = sign_raw(&header, &claims);
    if forged == control {
        return Err("the change left the token as it was".to_owned());
    }
    if let Some(survives) = forgery.parsed {
        match jsonwebtoken::decode_header(&forged) {
            Ok(parsed) if survives(&parsed) => {}
            Ok(_) => return Err("jsonwebtoken drops the changed header field".to_owned()),
            Err(e) => return Err(format!("jsonwebtoken cannot read the header: {e}")),
        }
    }
    let reply = s.call(GEOCODE, &forged).await;
    let verdict = forgery.verdict;
    catch_unwind(AssertUnwindSafe(|| match verdict {
        Verdict::Accepted => reply.assert_ok(),
        Verdict::Refused(kind) => {
            reply.assert_invalid_token();
            if let Some(kind) = kind {
                assert_eq!(reply.kind(), kind);
            }
        }
    }))
    .map_err(|_| format!("expected {verdict:?}, got {}", reply.describe()))
}

#[tokio::test]
async fn each_forged_header_or_claim_is_refused_and_each_leeway_is_exact() {
    let forgeries = forgeries();
    let mut failed = Vec::new();
    for forgery in &forgeries {
        if let Err(why) = check(forgery).await {
            failed.push(format!("{}: {why}", forgery.case));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} forgeries were not answered as expected:\n{}",
        failed.len(),
        forgeries.len(),
        failed.join("\n")
    );
}
